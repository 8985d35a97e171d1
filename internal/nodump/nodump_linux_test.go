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

func TestWhileDumpableRestores(t *testing.T) {
	if _, err := Set(); err != nil {
		t.Fatal(err)
	}
	var inside bool
	err := WhileDumpable(func() error {
		var err error
		inside, err = dumpable()
		return err
	})
	if err != nil || !inside {
		t.Fatalf("inside WhileDumpable: dumpable %v, %v", inside, err)
	}
	if after, err := dumpable(); err != nil || after {
		t.Fatalf("after WhileDumpable: dumpable %v, %v", after, err)
	}
}
