package nodump

import "testing"

func TestSetClearsDumpable(t *testing.T) {
	before, err := dumpable()
	if err != nil {
		t.Fatal(err)
	}
	if !before {
		t.Fatal("the test process is not dumpable before Set: nothing would be proved")
	}
	ok, err := Set()
	if err != nil || !ok {
		t.Fatalf("Set: %v, %v", ok, err)
	}
	if after, err := dumpable(); err != nil || after {
		t.Fatalf("dumpable after Set: %v, %v", after, err)
	}
}
