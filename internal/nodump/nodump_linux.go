package nodump

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func set() (bool, error) {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return false, fmt.Errorf("prctl PR_SET_DUMPABLE: %w", err)
	}
	return true, nil
}

// dumpable reports the process's dumpable attribute.
func dumpable() (bool, error) {
	v, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		return false, fmt.Errorf("prctl PR_GET_DUMPABLE: %w", err)
	}
	return v != 0, nil
}
