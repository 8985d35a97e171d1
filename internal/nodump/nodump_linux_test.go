package nodump

import (
	"testing"

	"golang.org/x/sys/unix"
)

// makeDumpable undoes an earlier test's Set: the attribute is the whole
// test process's, and tests run in any order.
func makeDumpable(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if d, err := dumpable(); err != nil || !d {
		t.Fatalf("the test process is not dumpable (%v): nothing would be proved", err)
	}
}

func TestSetClearsDumpable(t *testing.T) {
	makeDumpable(t)
	ok, err := Set()
	if err != nil || !ok {
		t.Fatalf("Set: %v, %v", ok, err)
	}
	if after, err := dumpable(); err != nil || after {
		t.Fatalf("dumpable after Set: %v, %v", after, err)
	}
}
