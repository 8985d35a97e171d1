// Package gcpace sets the garbage collector's percentage (GOGC) after every
// collection so that the heap may grow by at most a fixed number of bytes
// over what is live, and by at most a fixed percentage.
//
// countersign runs with GOGC=200 because its live heap is usually small and
// its garbage short-lived: collecting half as often costs a few MiB. But a
// proxy holding ten thousand requests for approval has a live heap of a
// hundred or more MiB, and 200 % of that is hundreds of MiB of garbage it
// need not keep. The runtime has no setting for headroom in bytes (a memory
// limit is a ceiling, which a large live heap would turn into continuous
// collection), so this package adjusts the percentage as the live heap
// changes.
package gcpace

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Options are the bounds.
type Options struct {
	// Percent is the most the heap may grow over what is live, as GOGC.
	Percent int
	// Headroom is the most, in bytes, the heap may grow over what is live;
	// the percentage goes down as the live heap grows past Headroom /
	// Percent.
	Headroom uint64
	// MinPercent is the least percentage used, however large the live
	// heap: below it collections would follow each other too closely.
	MinPercent int
	// Set applies a percentage (default debug.SetGCPercent); for tests.
	Set func(percent int)
}

// Percent is the GOGC for a live heap of live bytes.
func (o Options) percent(live uint64) int {
	if live == 0 {
		return o.Percent
	}
	p := o.Headroom * 100 / live
	return int(max(min(p, uint64(o.Percent)), uint64(o.MinPercent)))
}

// Start sets the percentage for the current live heap and again after each
// collection, until stop is called.
func Start(o Options) (stop func()) {
	if o.Set == nil {
		o.Set = func(p int) { debug.SetGCPercent(p) }
	}
	p := &pacer{o: o, last: -1, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	p.adjust()
	p.arm()
	return func() {
		p.mu.Lock()
		p.stopped = true
		p.mu.Unlock()
	}
}

type pacer struct {
	o      Options
	mu     sync.Mutex
	last   int
	sample []metrics.Sample

	stopped bool
}

// sentinel holds a pointer so that it is not a tiny allocation, which
// shares a block with others and may never be found unreachable alone.
type sentinel struct{ _ *byte }

// arm makes the next collection call adjust: a cleanup runs after the
// collection that finds its object unreachable, and the sentinel below is
// unreachable as soon as arm returns.
func (p *pacer) arm() {
	sentinel := new(sentinel)
	runtime.AddCleanup(sentinel, func(p *pacer) {
		p.mu.Lock()
		stopped := p.stopped
		p.mu.Unlock()
		if stopped {
			return
		}
		p.adjust()
		p.arm()
	}, p)
}

func (p *pacer) adjust() {
	p.mu.Lock()
	defer p.mu.Unlock()
	metrics.Read(p.sample)
	if p.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	pct := p.o.percent(p.sample[0].Value.Uint64())
	if pct != p.last {
		p.last = pct
		p.o.Set(pct)
	}
}
