// Package nodump keeps other processes of countersign's user out of its
// memory and its /proc files.
//
// Without --isolate the agent runs as the same user as countersign, which
// holds what the agent must not have: the configuration's secrets (often
// passed in its environment), the CA key and the admin token. A process of
// the same user may read another's /proc/PID/environ and, where Yama does
// not restrict it (Debian's default), ptrace it and read its memory. A
// process that is not dumpable allows neither to anyone without
// CAP_SYS_PTRACE, and a program it starts is dumpable again after execve,
// so the agent itself is unaffected.
package nodump

// Set makes this process not dumpable where the system has such a setting
// (Linux); elsewhere it does nothing and reports false.
func Set() (bool, error) { return set() }
