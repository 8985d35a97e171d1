//go:build !linux

package testinfra

import "syscall"

// procAttr is Linux's (the tests that start PostgreSQL run there); the
// package itself builds everywhere, as countersign demo uses its fakes.
func procAttr(*runAs, bool) *syscall.SysProcAttr { return nil }
