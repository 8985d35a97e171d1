//go:build !linux

package nodump

func set() (bool, error) { return false, nil }

func whileDumpable(f func() error) error { return f() }
