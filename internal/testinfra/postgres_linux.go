package testinfra

import "syscall"

// procAttr runs a PostgreSQL program as user (when not nil) and, with
// deathsig, ends it when the thread that started it ends.
func procAttr(user *runAs, deathsig bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{}
	if user != nil {
		a.Credential = &syscall.Credential{Uid: uint32(user.uid), Gid: uint32(user.gid)}
	}
	if deathsig {
		a.Pdeathsig = syscall.SIGINT
	}
	return a
}
