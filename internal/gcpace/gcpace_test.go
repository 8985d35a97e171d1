package gcpace

import (
	"runtime"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	o := Options{Percent: 200, Headroom: 64 << 20, MinPercent: 25}
	tests := []struct {
		live uint64
		want int
	}{
		{0, 200},
		{4 << 20, 200},  // small heap: the percentage rules
		{32 << 20, 200}, // exactly where the two meet
		{64 << 20, 100}, // headroom rules
		{200 << 20, 32}, // 64 MiB over 200 MiB
		{1 << 30, 25},   // never below MinPercent
		{1 << 40, 25},
	}
	for _, tt := range tests {
		if got := o.percent(tt.live); got != tt.want {
			t.Errorf("percent(%d MiB) = %d, want %d", tt.live>>20, got, tt.want)
		}
	}
}

// Start follows the live heap from one collection to the next.
func TestStartFollowsLiveHeap(t *testing.T) {
	set := make(chan int, 100)
	stop := Start(Options{Percent: 200, Headroom: 8 << 20, MinPercent: 10, Set: func(p int) {
		select {
		case set <- p:
		default:
		}
	}})
	defer stop()
	// A live heap of 64 MiB: 8 MiB of headroom is 12 %.
	live := make([][]byte, 64)
	for i := range live {
		live[i] = make([]byte, 1<<20)
		live[i][0] = 1
	}
	deadline := time.After(30 * time.Second)
	for {
		runtime.GC()
		select {
		case p := <-set:
			if p >= 10 && p <= 13 {
				runtime.KeepAlive(live)
				return
			}
		case <-deadline:
			t.Fatal("the percentage did not follow a 64 MiB live heap")
		default:
		}
	}
}
