//go:build linux

package session

import (
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// seccompData lays out what the filter reads of seccomp_data for the
// bpf package's VM, which loads words big-endian whatever the host: nr,
// arch, and the word at the command's offset.
func seccompData(nr, arch uint32, cmd uint64, bigEndian bool) []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], nr)
	binary.BigEndian.PutUint32(b[4:], arch)
	lo, hi := uint32(cmd), uint32(cmd>>32)
	if bigEndian {
		binary.BigEndian.PutUint32(b[24:], hi)
		binary.BigEndian.PutUint32(b[28:], lo)
	} else {
		binary.BigEndian.PutUint32(b[24:], lo)
		binary.BigEndian.PutUint32(b[28:], hi)
	}
	return b
}

// TestTerminalFilterProgram runs the filter of each architecture on the
// system calls that matter, including the 32-bit ABIs a 64-bit process can
// also call (int 0x80 on x86-64), which a filter for the native ABI alone
// would let through.
func TestTerminalFilterProgram(t *testing.T) {
	const (
		allow = seccompRetAllow
		eperm = seccompRetErrno | int(unix.EPERM)
		enosy = seccompRetErrno | int(unix.ENOSYS)
	)
	sti, linux, tcgets := uint64(unix.TIOCSTI), uint64(unix.TIOCLINUX), uint64(unix.TCGETS)
	tests := []struct {
		goarch    string
		bigEndian bool
		nr, arch  uint32
		cmd       uint64
		want      int
	}{
		{"amd64", false, 16, unix.AUDIT_ARCH_X86_64, sti, eperm},
		{"amd64", false, 16, unix.AUDIT_ARCH_X86_64, linux, eperm},
		{"amd64", false, 16, unix.AUDIT_ARCH_X86_64, sti | 0xffffffff<<32, eperm}, // the tty layer reads 32 bits
		{"amd64", false, 16, unix.AUDIT_ARCH_X86_64, tcgets, allow},
		{"amd64", false, 0, unix.AUDIT_ARCH_X86_64, sti, allow}, // read(2), not ioctl
		{"amd64", false, 54, unix.AUDIT_ARCH_I386, sti, eperm},  // int 0x80
		{"amd64", false, 54, unix.AUDIT_ARCH_I386, tcgets, allow},
		{"amd64", false, 16, unix.AUDIT_ARCH_I386, sti, allow}, // i386's 16 is lchown
		{"amd64", false, x32SyscallBit | 514, unix.AUDIT_ARCH_X86_64, sti, enosy},
		{"amd64", false, 16, 0x12345678, sti, enosy}, // an ABI the filter does not know runs nothing
		{"amd64", false, 0, 0x12345678, 0, enosy},
		{"386", false, 16, unix.AUDIT_ARCH_X86_64, sti, eperm}, // a 64-bit program under a 32-bit build
		{"arm", false, 29, unix.AUDIT_ARCH_AARCH64, sti, eperm},
		{"ppc64", true, 54, unix.AUDIT_ARCH_PPC, sti, eperm},
		{"riscv64", false, 29, unix.AUDIT_ARCH_RISCV32, sti, eperm},
		{"arm64", false, 29, unix.AUDIT_ARCH_AARCH64, sti, eperm},
		{"arm64", false, 54, unix.AUDIT_ARCH_ARM, sti, eperm},
		{"arm64", false, 29, unix.AUDIT_ARCH_AARCH64, tcgets, allow},
		{"s390x", true, 54, unix.AUDIT_ARCH_S390X, sti, eperm},
		{"s390x", true, 54, unix.AUDIT_ARCH_S390X, sti << 32, allow}, // the word that is not the command
	}
	for _, tt := range tests {
		prog, err := terminalFilter(tt.goarch, tt.bigEndian)
		if err != nil {
			t.Fatal(err)
		}
		ins, ok := bpf.Disassemble(prog)
		if !ok {
			t.Fatalf("%s: the program does not disassemble", tt.goarch)
		}
		vm, err := bpf.NewVM(ins)
		if err != nil {
			t.Fatalf("%s: %v", tt.goarch, err)
		}
		got, err := vm.Run(seccompData(tt.nr, tt.arch, tt.cmd, tt.bigEndian))
		if err != nil || got != tt.want {
			t.Errorf("%s: nr %d arch %#x cmd %#x: %#x, %v; want %#x", tt.goarch, tt.nr, tt.arch, tt.cmd, got, err, tt.want)
		}
	}
	if _, err := terminalFilter("mips64", true); err == nil {
		t.Error("an architecture without a filter gets one")
	}
}

// TestTerminalInjectionRefused installs the filter on a thread of its own
// (which dies with it) and tries TIOCSTI on /dev/null: the kernel answers
// ENOTTY without the filter, EPERM with it; other ioctls still reach the
// kernel.
func TestTerminalInjectionRefused(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ioctl := func(cmd uintptr) error {
		c := byte('x')
		_, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), cmd, uintptr(unsafe.Pointer(&c)))
		if e != 0 {
			return e
		}
		return nil
	}
	type result struct{ before, sti, tcgets, err error }
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		var r result
		r.before = ioctl(unix.TIOCSTI)
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			r.err = err
		} else if err := denyTerminalInjection(); err != nil {
			r.err = err
		}
		r.sti, r.tcgets = ioctl(unix.TIOCSTI), ioctl(unix.TCGETS)
		ch <- r
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !errors.Is(r.before, unix.ENOTTY) {
		t.Fatalf("TIOCSTI on /dev/null without the filter: %v, want ENOTTY (the test cannot tell the filter's answer apart)", r.before)
	}
	if !errors.Is(r.sti, unix.EPERM) {
		t.Errorf("TIOCSTI with the filter: %v, want EPERM", r.sti)
	}
	if !errors.Is(r.tcgets, unix.ENOTTY) {
		t.Errorf("TCGETS with the filter: %v, want the kernel's ENOTTY", r.tcgets)
	}
	// This thread has no filter.
	if err := ioctl(unix.TIOCSTI); !errors.Is(err, unix.ENOTTY) {
		t.Errorf("TIOCSTI on another thread: %v; the filter leaked beyond its thread", err)
	}
}
