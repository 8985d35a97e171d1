//go:build !linux

package nodump

func set() (bool, error) { return false, nil }
