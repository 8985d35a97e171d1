//go:build linux

package session

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The isolated agent shares the user's terminal. With TIOCSTI it could push
// characters into the terminal's input queue, which the user's shell reads
// once the agent exits (or after a ^Z it types there): commands run outside
// the namespaces, where the admin token and the CA key are. TIOCLINUX can
// do the same through the console's selection. Both are refused by a
// seccomp filter, as bubblewrap and Flatpak do; kernels since 6.2 can turn
// TIOCSTI off (dev.tty.legacy_tiocsti), but most leave it on.

// seccomp return values (linux/seccomp.h).
const (
	seccompRetAllow = 0x7fff0000
	seccompRetErrno = 0x00050000
	// x32SyscallBit marks the x32 ABI's system calls on x86-64.
	x32SyscallBit = 0x40000000
)

// ioctlArch is one system call ABI a process of this architecture can use:
// its AUDIT_ARCH value and its ioctl number.
type ioctlArch struct {
	audit uint32
	ioctl uint32
	// x32 refuses the x32 ABI's system calls outright (ENOSYS): its ioctl
	// has a number of its own, and nothing an agent runs needs x32.
	x32 bool
}

// ioctlArches lists the ABIs a process can call on a kernel that runs a
// GOARCH program: the native one, the 32-bit ones a 64-bit kernel also
// takes (int 0x80 on x86-64, AArch32 on arm64), and, for a 32-bit build,
// the 64-bit ABI of the kernel it may well be running on (a 32-bit
// Raspberry Pi OS boots a 64-bit kernel).
func ioctlArches(goarch string) ([]ioctlArch, error) {
	x86 := []ioctlArch{{audit: unix.AUDIT_ARCH_X86_64, ioctl: 16, x32: true}, {audit: unix.AUDIT_ARCH_I386, ioctl: 54}}
	arm := []ioctlArch{{audit: unix.AUDIT_ARCH_AARCH64, ioctl: 29}, {audit: unix.AUDIT_ARCH_ARM, ioctl: 54}}
	switch goarch {
	case "amd64", "386":
		return x86, nil
	case "arm64", "arm":
		return arm, nil
	case "riscv64":
		return []ioctlArch{{audit: unix.AUDIT_ARCH_RISCV64, ioctl: 29}, {audit: unix.AUDIT_ARCH_RISCV32, ioctl: 29}}, nil
	case "loong64":
		return []ioctlArch{{audit: unix.AUDIT_ARCH_LOONGARCH64, ioctl: 29}}, nil
	case "ppc64le", "ppc64":
		return []ioctlArch{{audit: unix.AUDIT_ARCH_PPC64LE, ioctl: 54}, {audit: unix.AUDIT_ARCH_PPC64, ioctl: 54}, {audit: unix.AUDIT_ARCH_PPC, ioctl: 54}}, nil
	case "s390x":
		return []ioctlArch{{audit: unix.AUDIT_ARCH_S390X, ioctl: 54}, {audit: unix.AUDIT_ARCH_S390, ioctl: 54}}, nil
	}
	return nil, fmt.Errorf("run --isolate: no filter against typing into the terminal for %s; isolation is not offered there", goarch)
}

// terminalFilter is the seccomp program: ioctl with TIOCSTI or TIOCLINUX
// fails with EPERM, everything else is allowed. A system call through an
// ABI the filter does not know fails with ENOSYS: a program built for it
// does not run at all, rather than run unfiltered.
func terminalFilter(goarch string, bigEndian bool) ([]bpf.RawInstruction, error) {
	arches, err := ioctlArches(goarch)
	if err != nil {
		return nil, err
	}
	// seccomp_data: nr at 0, arch at 4, instruction pointer at 8, args
	// (64 bits each) from 16. The tty layer reads ioctl's command as an
	// unsigned int: the low half of args[1].
	cmdOff := uint32(16 + 8)
	if bigEndian {
		cmdOff += 4
	}
	var prog []labelled
	add := func(ins bpf.Instruction, jt, jf string) { prog = append(prog, labelled{ins: ins, jt: jt, jf: jf}) }
	label := func(name string) { prog = append(prog, labelled{label: name}) }

	add(bpf.LoadAbsolute{Off: 4, Size: 4}, "", "")
	for i := range arches {
		add(bpf.JumpIf{Cond: bpf.JumpEqual, Val: arches[i].audit}, fmt.Sprintf("arch%d", i), "")
	}
	add(bpf.RetConstant{Val: seccompRetErrno | uint32(unix.ENOSYS)}, "", "")
	for i, a := range arches {
		label(fmt.Sprintf("arch%d", i))
		add(bpf.LoadAbsolute{Off: 0, Size: 4}, "", "")
		if a.x32 {
			add(bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32SyscallBit}, "nosys", "")
		}
		add(bpf.JumpIf{Cond: bpf.JumpEqual, Val: a.ioctl}, "ioctl", "allow")
	}
	label("ioctl")
	add(bpf.LoadAbsolute{Off: cmdOff, Size: 4}, "", "")
	add(bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.TIOCSTI}, "deny", "")
	add(bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.TIOCLINUX}, "deny", "")
	label("allow")
	add(bpf.RetConstant{Val: seccompRetAllow}, "", "")
	label("deny")
	add(bpf.RetConstant{Val: seccompRetErrno | uint32(unix.EPERM)}, "", "")
	label("nosys")
	add(bpf.RetConstant{Val: seccompRetErrno | uint32(unix.ENOSYS)}, "", "")
	return assemble(prog)
}

// labelled is an instruction whose jumps name labels, or a label.
type labelled struct {
	ins    bpf.Instruction
	jt, jf string // jump targets of a JumpIf; "" falls through
	label  string
}

// assemble resolves the labels into relative jumps and assembles.
func assemble(prog []labelled) ([]bpf.RawInstruction, error) {
	at := map[string]int{}
	n := 0
	for _, p := range prog {
		if p.label != "" {
			at[p.label] = n
			continue
		}
		n++
	}
	var out []bpf.Instruction
	for _, p := range prog {
		if p.label != "" {
			continue
		}
		pc := len(out)
		skip := func(name string) (uint8, error) {
			if name == "" {
				return 0, nil
			}
			to, ok := at[name]
			if !ok || to <= pc || to-pc-1 > 255 {
				return 0, fmt.Errorf("seccomp filter: bad jump to %q", name)
			}
			return uint8(to - pc - 1), nil
		}
		if j, ok := p.ins.(bpf.JumpIf); ok {
			var err error
			if j.SkipTrue, err = skip(p.jt); err != nil {
				return nil, err
			}
			if j.SkipFalse, err = skip(p.jf); err != nil {
				return nil, err
			}
			p.ins = j
		}
		out = append(out, p.ins)
	}
	return bpf.Assemble(out)
}

// denyTerminalInjection installs the filter on the calling thread, which
// must have no_new_privs set; processes it starts inherit it.
func denyTerminalInjection() error {
	raw, err := terminalFilter(runtime.GOARCH, binary.NativeEndian.Uint16([]byte{0, 1}) == 1)
	if err != nil {
		return err
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	defer runtime.KeepAlive(filter)
	// SPEC_ALLOW: on x86 kernels before 5.16, any seccomp filter would
	// otherwise turn on the Spectre v4 mitigation for the agent's whole
	// process tree and slow JIT-heavy agents; this filter is not a
	// sandbox for untrusted code, it guards one ioctl. Older kernels
	// without the flag get prctl.
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW, uintptr(unsafe.Pointer(&prog)))
	if errno == 0 {
		return nil
	}
	if errno != unix.EINVAL && errno != unix.ENOSYS {
		return fmt.Errorf("install the seccomp filter refusing TIOCSTI: %w", errno)
	}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0); err != nil {
		return fmt.Errorf("install the seccomp filter refusing TIOCSTI: %w", err)
	}
	return nil
}
