//go:build linux

package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// The init process's inherited descriptors.
const (
	ctrlFD = 3 // SOCK_SEQPACKET to the parent: listener handover and status
	specFD = 4 // pipe: the initSpec as JSON
)

// ctrlMsg is one message on the control socket, init to parent.
type ctrlMsg struct {
	// Type is "listener" (with the listening socket attached), "ready"
	// (self-test passed), "started" (the child runs) or "error".
	Type string `json:"type"`
	Msg  string `json:"msg,omitempty"`
	// Perm marks an error caused by a missing permission (EPERM, EACCES):
	// the host restricts what user namespaces may do.
	Perm bool `json:"perm,omitempty"`
	// Code is the exit code of an "error" (127: the command was not found).
	Code int `json:"code,omitempty"`
}

// Isolated is a child running under [StartIsolated].
type Isolated struct {
	cmd *exec.Cmd
	fwd *Forwarder
	// ownGroup: the init process and the child are in a process group of
	// their own (ownProcessGroup).
	ownGroup bool
}

// UserNamespaceError reports that the kernel refused to create the
// namespaces. Its message names the settings that allow them.
type UserNamespaceError struct {
	Err error
}

func (e *UserNamespaceError) Error() string {
	return fmt.Sprintf("isolate: cannot create user, network and mount namespaces (%v); %s", e.Err, userNSHint())
}

func (e *UserNamespaceError) Unwrap() error { return e.Err }

// userNSSysctls are the settings that decide whether unprivileged user
// namespaces are allowed.
var userNSSysctls = []string{
	"kernel.unprivileged_userns_clone",             // Debian, older Ubuntu: 0 forbids them
	"user.max_user_namespaces",                     // 0 forbids them
	"user.max_net_namespaces",                      // 0 forbids network namespaces
	"user.max_mnt_namespaces",                      // 0 forbids mount namespaces
	"kernel.apparmor_restrict_unprivileged_userns", // Ubuntu 23.10+: 1 restricts them
}

// userNSHint names the sysctls (with their current values where readable)
// that decide whether unprivileged user namespaces are allowed.
func userNSHint() string {
	var cur []string
	for _, name := range userNSSysctls {
		b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
		if err != nil {
			continue
		}
		cur = append(cur, fmt.Sprintf("%s = %s", name, strings.TrimSpace(string(b))))
	}
	msg := "this host does not allow unprivileged user namespaces. Allow them with " +
		"`sysctl -w kernel.unprivileged_userns_clone=1` (Debian, older Ubuntu), " +
		"`sysctl -w user.max_user_namespaces=15000` (where it is 0), or on Ubuntu 23.10+ " +
		"`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (or an AppArmor profile that grants userns to countersign); " +
		"inside a container the runtime's seccomp profile may forbid them too: run countersign on the host or in a VM"
	if len(cur) > 0 {
		msg += " (now: " + strings.Join(cur, ", ") + ")"
	}
	return msg
}

// StartIsolated starts opts.Args in new user, network, mount, PID and IPC
// namespaces and returns once the start-up self-test has passed and the
// child runs. The forwarder it starts (owned by the returned Isolated)
// relays the child's loopback proxy port to opts.ProxyAddr.
//
// Errors: *UserNamespaceError when the kernel refuses the namespaces,
// *SetupError when set-up or the self-test fails (nothing was started).
func StartIsolated(ctx context.Context, opts IsolateOptions, logger *zap.Logger) (*Isolated, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	spec, err := plan(opts, filepath.EvalSymlinks)
	if err != nil {
		return nil, err
	}
	exe, args := opts.Exe, opts.InitArgs
	if exe == "" {
		exe, args = "/proc/self/exe", []string{InitCommand}
	}

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("isolate: control socket: %w", err)
	}
	parentF := os.NewFile(uintptr(fds[0]), "isolate-control")
	childF := os.NewFile(uintptr(fds[1]), "isolate-control")
	defer childF.Close()
	fc, err := net.FileConn(parentF)
	parentF.Close()
	if err != nil {
		return nil, fmt.Errorf("isolate: control socket: %w", err)
	}
	ctrl := fc.(*net.UnixConn)
	defer ctrl.Close()
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("isolate: %w", err)
	}
	defer specR.Close()
	defer specW.Close()

	ownGroup := ownProcessGroup()
	spec.OwnGroup = ownGroup
	spec.UID, spec.GID = os.Getuid(), os.Getgid()
	cmd := exec.Command(exe, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{childF, specR}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET | syscall.CLONE_NEWNS |
			syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC,
		// No UidMappings: the init process writes its own (writeIDMaps).
		// countersign is not dumpable (internal/nodump), nor is a child
		// forked from it until it execs, and only root may write the maps
		// of a child that is not dumpable: countersign would have to be
		// dumpable, its secrets readable, while it started the child.
		//
		// The init process keeps what it needs to bring up loopback, mount
		// and bind the proxy port, also when the uid inside is not 0 (a
		// process maps its own ids with CAP_SYS_ADMIN in its namespace, as
		// the namespace's owner: user_namespaces(7)). It drops every
		// capability before it starts the child.
		AmbientCaps: []uintptr{unix.CAP_SYS_ADMIN, unix.CAP_NET_ADMIN, unix.CAP_NET_BIND_SERVICE, unix.CAP_SETPCAP},
		// If countersign dies, so does the init process, and with it (PID 1
		// of its namespace) every process inside.
		Pdeathsig: syscall.SIGKILL,
		// Without a terminal, a process group of its own: see
		// ownProcessGroup.
		Setpgid: ownGroup,
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.ENOSPC) ||
			errors.Is(err, syscall.EUSERS) || errors.Is(err, syscall.EINVAL) {
			return nil, &UserNamespaceError{Err: errors.Unwrap(err)}
		}
		return nil, fmt.Errorf("isolate: start the init process: %w", err)
	}
	childF.Close()
	specR.Close()
	iso := &Isolated{cmd: cmd, ownGroup: ownGroup}

	// end reaps the init process (killing it first unless it is known to
	// be exiting) and stops the forwarder.
	end := func(kill bool) {
		if kill {
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
		if iso.fwd != nil {
			_ = iso.fwd.Close()
		}
	}
	abort := func(err error) (*Isolated, error) {
		end(true)
		return nil, err
	}
	if err := json.NewEncoder(specW).Encode(spec); err != nil {
		return abort(fmt.Errorf("isolate: send the set-up to the init process: %w", err))
	}
	specW.Close()

	deadline := time.Now().Add(spec.Timeout + 5*time.Second)
	_ = ctrl.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = ctrl.SetReadDeadline(time.Now()) })
	defer stop()

	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := ctrl.ReadMsgUnix(buf, oob)
		if err == nil && n == 0 {
			err = io.EOF
		}
		if err != nil {
			if ctx.Err() != nil {
				return abort(ctx.Err())
			}
			if isTimeout(err) {
				return abort(&SetupError{Msg: "set-up did not finish in time", Code: 2})
			}
			// The init process closed its end: it is exiting. Say how.
			end(false)
			return nil, &SetupError{Msg: fmt.Sprintf("the init process ended during set-up (%v)", cmd.ProcessState), Code: 2}
		}
		var m ctrlMsg
		if err := json.Unmarshal(buf[:n], &m); err != nil {
			return abort(fmt.Errorf("isolate: bad message from the init process: %w", err))
		}
		switch m.Type {
		case "listener":
			if iso.fwd != nil {
				return abort(errors.New("isolate: a second listener from the init process"))
			}
			ln, err := receiveListener(oob[:oobn])
			if err != nil {
				return abort(err)
			}
			iso.fwd = StartForwarder(ln, opts.ProxyAddr, logger)
		case "ready":
			logger.Info("isolation self-test passed")
		case "started":
			if iso.fwd == nil {
				return abort(errors.New("isolate: the child started without a forwarder"))
			}
			return iso, nil
		case "error":
			// The init process exits right after reporting.
			end(false)
			code := m.Code
			if code == 0 {
				code = 2
			}
			return nil, &SetupError{Msg: m.Msg, Perm: m.Perm, Code: code}
		default:
			return abort(fmt.Errorf("isolate: unknown message %q from the init process", m.Type))
		}
	}
}

func receiveListener(oob []byte) (net.Listener, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("isolate: no listener from the init process (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("isolate: no listener from the init process (%v)", err)
	}
	f := os.NewFile(uintptr(fds[0]), "isolate-listener")
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("isolate: listener from the init process: %w", err)
	}
	return ln, nil
}

// Signal passes sig on to the child. When the child has a process group
// of its own (see InOwnGroup), every signal goes to that group, as a
// terminal's or a CI runner's goes to the whole job, so that the child's
// own children get it too (found by review: an agent under `sh -c` missed
// a runner's SIGTERM). Otherwise it goes to the init process, which passes
// SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 on to the child; SIGINT and SIGQUIT
// reach the child from the terminal directly.
func (i *Isolated) Signal(sig os.Signal) error {
	if s, ok := sig.(syscall.Signal); ok && i.ownGroup {
		return syscall.Kill(-i.cmd.Process.Pid, s)
	}
	return i.cmd.Process.Signal(sig)
}

// InOwnGroup reports whether the child is in a process group of its own,
// so that signals sent to countersign's group must be passed on to it.
func (i *Isolated) InOwnGroup() bool { return i.ownGroup }

// Wait waits for the child (through the init process, which exits with the
// child's status: its exit code, or 128+signal), then stops the forwarder.
// Every process left in the namespaces is killed when the init process
// ends.
func (i *Isolated) Wait() (int, error) {
	err := i.cmd.Wait()
	_ = i.fwd.Close()
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 1, err
}

// IsolateInit is the init process of `run --isolate` (the hidden
// subcommand [InitCommand]): PID 1 of the new namespaces. It brings up
// loopback, hands its proxy-port listener to the parent, sets up the mounts,
// runs the self-test, drops every capability, starts the child and exits
// with the child's status. It returns the process exit code.
func IsolateInit() int {
	// Nothing inherited beyond stdin, stdout and stderr may reach the
	// child: a stray socket from countersign's own parent would be a way
	// out.
	if err := unix.CloseRange(ctrlFD, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		markCloexecFallback()
	}
	if _, err := unix.FcntlInt(ctrlFD, unix.F_GETFD, 0); err != nil {
		fmt.Fprintln(os.Stderr, "countersign: "+InitCommand+" is started by `countersign run --isolate`, not by hand")
		return 2
	}
	// Not dumpable (main made it so already; writeIDMaps undoes it for a
	// moment, before the child exists): the child (same uid) may not
	// ptrace this process, which keeps capabilities in the namespace, or
	// open its /proc files.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)

	fc, err := net.FileConn(os.NewFile(ctrlFD, "isolate-control"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "countersign: isolate: control socket:", err)
		return 2
	}
	ctrl := fc.(*net.UnixConn)
	specF := os.NewFile(specFD, "isolate-spec")
	var spec initSpec
	err = json.NewDecoder(specF).Decode(&spec)
	specF.Close()
	r := &initProcess{ctrl: ctrl, spec: spec}
	if err != nil {
		return r.fail(fmt.Errorf("read the set-up: %w", err), 2)
	}
	if err := writeIDMaps(spec.UID, spec.GID); err != nil {
		return r.fail(fmt.Errorf("map countersign's user into the namespace: %w", err), 2)
	}
	return r.run()
}

// writeIDMaps maps uid and gid (countersign's, outside) to themselves in
// this process's new user namespace, as an unprivileged process may map
// its own ids (user_namespaces(7)): setgroups denied first, then one line
// each. A process that is not dumpable has /proc/self files owned by the
// namespace's root, which is not mapped yet, so this one is dumpable while
// it writes them. The agent is not started yet; processes of the same user
// outside could ptrace it then, as they could before main made it not
// dumpable, but it holds no secret (its environment is empty).
func writeIDMaps(uid, gid int) error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_DUMPABLE: %w", err)
	}
	defer unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	for _, f := range []struct{ path, data string }{
		{"/proc/self/setgroups", "deny"},
		{"/proc/self/gid_map", fmt.Sprintf("%d %d 1\n", gid, gid)},
		{"/proc/self/uid_map", fmt.Sprintf("%d %d 1\n", uid, uid)},
	} {
		fd, err := os.OpenFile(f.path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = fd.WriteString(f.data)
		if cerr := fd.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return nil
}

type initProcess struct {
	ctrl *net.UnixConn
	spec initSpec
}

func (r *initProcess) send(m ctrlMsg, oob []byte) error {
	b, _ := json.Marshal(m)
	_, _, err := r.ctrl.WriteMsgUnix(b, oob, nil)
	return err
}

func (r *initProcess) fail(err error, code int) int {
	perm := errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)
	if r.send(ctrlMsg{Type: "error", Msg: err.Error(), Perm: perm, Code: code}, nil) != nil {
		fmt.Fprintln(os.Stderr, "countersign: isolate:", err)
	}
	return code
}

func (r *initProcess) run() int {
	ctx, cancel := context.WithTimeout(context.Background(), r.spec.Timeout)
	defer cancel()

	if err := loopbackUp(); err != nil {
		return r.fail(fmt.Errorf("bring up loopback: %w", err), 2)
	}
	ln, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(r.spec.ListenPort)))
	if err != nil {
		return r.fail(fmt.Errorf("listen on the proxy port inside: %w", err), 2)
	}
	lf, err := ln.(*net.TCPListener).File()
	ln.Close()
	if err != nil {
		return r.fail(fmt.Errorf("listener: %w", err), 2)
	}
	err = r.send(ctrlMsg{Type: "listener"}, unix.UnixRights(int(lf.Fd())))
	lf.Close()
	if err != nil {
		return r.fail(fmt.Errorf("hand the listener over: %w", err), 2)
	}

	if err := setupMounts(r.spec); err != nil {
		return r.fail(err, 2)
	}
	if err := selfTest(ctx, r.spec.SelfTest); err != nil {
		return r.fail(fmt.Errorf("self-test failed, refusing to start: %w", err), 2)
	}
	if err := r.send(ctrlMsg{Type: "ready"}, nil); err != nil {
		return 2
	}

	path, err := lookPath(r.spec.Args[0], r.spec.Env, r.spec.Dir)
	if err != nil {
		return r.fail(err, 127)
	}
	// Signals arriving from here on are for the child.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	proc, err := startChild(path, r.spec)
	var se *childSetupError
	switch {
	case errors.As(err, &se):
		// Countersign's set-up, not the command, failed.
		return r.fail(fmt.Errorf("isolate %s: %w", r.spec.Args[0], se.err), 2)
	case err != nil:
		return r.fail(fmt.Errorf("start %s: %w", r.spec.Args[0], err), 127)
	}
	_ = r.send(ctrlMsg{Type: "started"}, nil)
	r.ctrl.Close()

	go func() {
		for s := range sigs {
			// SIGINT and SIGQUIT come from the terminal, which sends them
			// to the child as well; in a group of its own, countersign
			// sends every signal to the whole group, the child included.
			if s != unix.SIGINT && s != unix.SIGQUIT && !r.spec.OwnGroup {
				_ = proc.Signal(s)
			}
		}
	}()
	return reap(proc.Pid)
}

// startChild starts the command with no capabilities: on a thread locked
// for the purpose, it empties the bounding, inheritable and ambient sets and
// sets no_new_privs, so that neither the child nor anything it executes
// (setuid or file-capability binaries included) can undo the mounts,
// installs the seccomp filter that keeps it from typing into the user's
// terminal (seccomp_linux.go), and gives it a session keyring of its own. The
// thread is never unlocked, so its credentials die with it.
func startChild(path string, spec initSpec) (*os.Process, error) {
	type result struct {
		p   *os.Process
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := dropCapabilities(); err != nil {
			ch <- result{err: &childSetupError{fmt.Errorf("drop capabilities: %w", err)}}
			return
		}
		if err := denyTerminalInjection(); err != nil {
			ch <- result{err: &childSetupError{err}}
			return
		}
		if err := newSessionKeyring(); err != nil {
			ch <- result{err: &childSetupError{err}}
			return
		}
		p, err := os.StartProcess(path, spec.Args, &os.ProcAttr{
			Dir:   spec.Dir,
			Env:   spec.Env,
			Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		})
		ch <- result{p, err}
	}()
	r := <-ch
	return r.p, r.err
}

// childSetupError is a failure of what startChild does before it starts
// the command.
type childSetupError struct{ err error }

func (e *childSetupError) Error() string { return e.err.Error() }
func (e *childSetupError) Unwrap() error { return e.err }

// newSessionKeyring gives the calling thread (and so the child) a new,
// empty session keyring, as runc does: the one it inherits is countersign's
// login session's, which holds Kerberos caches and tokens stored with
// keyctl, and through which the child could read and change them, also for
// the user's later shells (found by review). Where keyctl is not allowed
// (a container's seccomp profile), the child cannot use it either.
func newSessionKeyring() error {
	_, _, errno := unix.Syscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0)
	switch errno {
	case 0, unix.ENOSYS:
		return nil
	case unix.EPERM, unix.EACCES:
		// Refused: by a seccomp filter the child inherits, or by a
		// security module. Go on only if the child cannot reach the old
		// keyring either.
		if _, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false); err != nil {
			return nil
		}
	}
	return &keyringError{errno}
}

// keyringError says why the child could not be given a keyring of its own.
type keyringError struct{ errno unix.Errno }

func (e *keyringError) Error() string {
	if e.errno == unix.EDQUOT {
		return "cannot create a session keyring for the child: your user's key quota is used up (see /proc/key-users and kernel.keys.maxkeys)"
	}
	return fmt.Sprintf("cannot create a session keyring for the child: %v", e.errno)
}

// dropCapabilities empties the calling thread's bounding, inheritable and
// ambient capability sets and sets no_new_privs. A child then starts with no
// capabilities, even as uid 0 inside the namespace.
func dropCapabilities() error {
	last := 63
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			last = n
		}
	}
	for c := 0; c <= last; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("bounding set: %w", err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("ambient set: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	return nil
}

// reap waits for every process that ends in the namespace (PID 1 inherits
// orphans) until the child itself ends, and returns its status: the exit
// code, or 128+signal. When this process exits, the kernel kills whatever
// is left in the PID namespace.
func reap(child int) int {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 1
		}
		if pid != child {
			continue
		}
		switch {
		case ws.Exited():
			return ws.ExitStatus()
		case ws.Signaled():
			return 128 + int(ws.Signal())
		}
	}
}

// loopbackUp sets IFF_UP on lo, the only interface of a new network
// namespace: 127.0.0.0/8 and ::1 then work, and nothing else has a route.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// setupMounts gives the namespace its view of the file system: private
// /tmp, /run and /dev/shm with the kept paths bound back at the same place,
// the hidden paths covered by empty mounts, and a /proc of the new PID
// namespace (other processes, and their views of the file system through
// /proc/PID/root, are out of reach).
func setupMounts(spec initSpec) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make the mount tree private: %w", err)
	}
	// Open what must stay visible before covering its parent.
	type kept struct {
		path string
		fd   int
		dir  bool
	}
	var keep []kept
	for _, p := range spec.Keep {
		fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // gone meanwhile: nothing to keep
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			continue
		}
		keep = append(keep, kept{p, fd, st.Mode&unix.S_IFMT == unix.S_IFDIR})
	}
	defer func() {
		for _, k := range keep {
			unix.Close(k.fd)
		}
	}()

	for _, d := range spec.Private {
		fi, err := os.Stat(d.Path)
		if err != nil || !fi.IsDir() {
			continue
		}
		opt := "mode=" + strconv.FormatUint(uint64(d.Mode), 8)
		if err := unix.Mount("tmpfs", d.Path, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opt); err != nil {
			return fmt.Errorf("private %s: %w", d.Path, err)
		}
	}
	for _, k := range keep {
		if err := os.MkdirAll(filepath.Dir(k.path), 0o755); err != nil {
			return fmt.Errorf("keep %s: %w", k.path, err)
		}
		if k.dir {
			if err := os.Mkdir(k.path, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("keep %s: %w", k.path, err)
			}
		} else if f, err := os.OpenFile(k.path, os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			f.Close()
		} else {
			return fmt.Errorf("keep %s: %w", k.path, err)
		}
		src := "/proc/self/fd/" + strconv.Itoa(k.fd)
		if err := unix.Mount(src, k.path, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("keep %s: %w", k.path, err)
		}
	}
	for _, d := range spec.Create {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	for _, p := range spec.ReadOnly {
		if err := readOnly(p); err != nil {
			return fmt.Errorf("make %s read-only: %w", p, err)
		}
	}
	for _, p := range spec.Hide {
		fi, err := os.Lstat(p)
		if err != nil {
			continue // not there in this view: nothing to hide
		}
		switch {
		case fi.IsDir():
			err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755,size=4k")
		case fi.Mode()&os.ModeSymlink != 0:
			continue // plan resolved the target, which is hidden itself
		default:
			err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("hide %s: %w", p, err)
		}
	}
	if err := privateTerminals(); err != nil {
		return err
	}
	if err := coverOtherProcs(); err != nil {
		return err
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		// Not a namespace permission problem: the host's /proc has parts
		// masked (as in a Docker container) and the kernel refuses a full
		// one. Running with the host's /proc would show its processes.
		return fmt.Errorf("mount /proc for the new PID namespace: %v (inside a container, allow it with e.g. docker --security-opt systempaths=unconfined, or run countersign on the host; see docs/isolation.md)", err)
	}
	return nil
}

// privateTerminals gives the namespace terminals of its own. The host's
// devpts holds every pseudo-terminal of the user, and the agent runs as the
// user: it could read what is typed in another one, or write a fake prompt
// into it. A new devpts instance covers /dev/pts, and /dev/ptmx is bound
// to the new instance's, so that terminals the agent opens (script, tmux, a
// pseudo-terminal library) come from it. Any other mount of a devpts is
// covered: a directory (a chroot's /dev/pts) by an empty one, a single
// terminal bound onto a file (a container's /dev/console) by /dev/null.
// Virtual consoles (tty1…, which login hands to whoever logs in on one)
// read and write as /dev/null, in /dev and in any other mount of a
// devtmpfs. The terminal countersign runs in stays open to the agent
// through its inherited descriptors and /dev/tty; its name under /dev/pts
// is gone, so it is bound over /dev/console, where a name lookup (tty,
// ttyname) finds it, as bubblewrap does. Run before the new /proc is
// mounted: /proc/self is how the terminal and the mounts are found.
func privateTerminals() error {
	own := ownTerminal()
	ptsMounts, devMounts, _, err := otherMounts()
	if err != nil {
		return err
	}
	// First, so that the new instance and the binds below are not taken
	// for the host's.
	for _, p := range ptsMounts {
		var fs unix.Statfs_t
		var st unix.Stat_t
		if p == own {
			continue // the session's own terminal, bound onto a name (LXC's /dev/tty1)
		}
		if unix.Statfs(p, &fs) != nil || fs.Type != unix.DEVPTS_SUPER_MAGIC || unix.Stat(p, &st) != nil {
			continue // under a directory made private: gone already
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755,size=4k")
		} else {
			err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("cover the terminals mounted at %s: %w", p, err)
		}
	}
	for _, dev := range devMounts {
		if err := coverConsoles(dev, own); err != nil {
			return err
		}
	}
	if fi, err := os.Stat("/dev/pts"); err != nil || !fi.IsDir() {
		return nil
	}
	// The name first, from this namespace's copy of the host's /dev/pts:
	// a descriptor opened before the namespace existed belongs to another
	// mount namespace, and the kernel refuses to bind from it.
	if strings.HasPrefix(own, "/dev/pts/") {
		// Only a name: the terminal works without it.
		_ = unix.Mount(own, "/dev/console", "", unix.MS_BIND, "")
	}
	if err := unix.Mount("devpts", "/dev/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0600"); err != nil {
		return fmt.Errorf("give the session terminals of its own (a new devpts instance on /dev/pts, so that the agent cannot reach your other terminals): %w (inside a container, run countersign on the host, or give the container its own devpts; see docs/isolation.md)", err)
	}
	// A /dev/ptmx that is a link (pts/ptmx, as in containers) already
	// leads to the new instance; since Linux 4.7 the device does too,
	// finding pts beside it.
	if fi, err := os.Lstat("/dev/ptmx"); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		if err := unix.Mount("/dev/pts/ptmx", "/dev/ptmx", "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind /dev/ptmx to the session's terminals: %w", err)
		}
	}
	return nil
}

// coverConsoles binds /dev/null over the virtual consoles in dir but own,
// or over dir itself when it is one (a console bound onto a file).
func coverConsoles(dir, own string) error {
	if isConsole(dir) {
		return coverConsole(dir, own)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil // made private, or gone: nothing there
	}
	for _, e := range entries {
		digits := strings.TrimPrefix(e.Name(), "tty")
		if digits == e.Name() || digits == "" || strings.Trim(digits, "0123456789") != "" {
			continue
		}
		if p := filepath.Join(dir, e.Name()); isConsole(p) {
			if err := coverConsole(p, own); err != nil {
				return err
			}
		}
	}
	return nil
}

// isConsole reports whether p is a virtual console: major 4, minors below
// 64. Serial lines (ttyS*) come after them and stay, like other devices.
func isConsole(p string) bool {
	var st unix.Stat_t
	return unix.Lstat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR &&
		unix.Major(uint64(st.Rdev)) == 4 && unix.Minor(uint64(st.Rdev)) < 64
}

func coverConsole(p, own string) error {
	if p == own {
		return nil
	}
	if err := unix.Mount("/dev/null", p, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("cover the virtual console %s: %w", p, err)
	}
	return nil
}

// coverOtherProcs covers every mount of a proc file system but /proc (a
// chroot's /proc): the host's would reach every process of the user, its
// terminals through /proc/PID/fd and the hidden files through
// /proc/PID/root. /proc itself gets the new PID namespace's own.
func coverOtherProcs() error {
	_, _, procs, err := otherMounts()
	if err != nil {
		return err
	}
	for _, p := range procs {
		var fs unix.Statfs_t
		if unix.Statfs(p, &fs) != nil || fs.Type != unix.PROC_SUPER_MAGIC {
			continue // under a directory made private: gone already
		}
		if err := unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755,size=4k"); err != nil {
			return fmt.Errorf("cover the processes mounted at %s: %w", p, err)
		}
	}
	return nil
}

// otherMounts lists, from /proc/self/mountinfo, the mount points of
// devpts file systems other than /dev/pts, those of devtmpfs ones (/dev,
// and a chroot's /dev bound from it), /dev always among them, and those of
// proc file systems other than /proc.
func otherMounts() (pts, dev, procs []string, err error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list the mounts, to hide the host's terminals and processes: %w", err)
	}
	dev = []string{"/dev"}
	for _, line := range strings.Split(string(b), "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS...] - FSTYPE SOURCE SUPEROPTS
		pre, post, ok := strings.Cut(line, " - ")
		fields, typ := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(typ) == 0 {
			continue
		}
		p := unescapeMountPath(fields[4])
		switch {
		case typ[0] == "devpts" && p != "/dev/pts" && !slices.Contains(pts, p):
			pts = append(pts, p)
		case typ[0] == "devtmpfs" && !slices.Contains(dev, p):
			dev = append(dev, p)
		case typ[0] == "proc" && p != "/proc" && !strings.HasPrefix(p, "/proc/") && !slices.Contains(procs, p):
			procs = append(procs, p)
		}
	}
	return pts, dev, procs, nil
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space,
// \011, \012, \134).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownTerminal returns the name of the first of standard input, output and
// error that is one of the host's pseudo-terminals (under /dev/pts) or a
// virtual console, or "" when none is. The name must lead to the very
// terminal: another devpts instance numbers its terminals alike, so the
// device number alone could name somebody else's.
func ownTerminal() string {
	for fd := range 3 {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
			continue
		}
		// Unix 98 pseudo-terminal slaves: majors 136 to 143; virtual
		// consoles: major 4, below 64.
		m := unix.Major(uint64(st.Rdev))
		if (m < 136 || m > 143) && (m != 4 || unix.Minor(uint64(st.Rdev)) >= 64) {
			continue
		}
		name, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		if err != nil || !strings.HasPrefix(name, "/dev/") {
			continue
		}
		var named unix.Stat_t
		if unix.Stat(name, &named) == nil && named.Dev == st.Dev && named.Ino == st.Ino && named.Rdev == st.Rdev {
			return name
		}
	}
	return ""
}

// readOnly bind-mounts p onto itself and remounts the bind read-only,
// then proves that writing is refused. A path that does not exist in this
// view has nothing to protect.
func readOnly(p string) error {
	if _, err := os.Stat(p); err != nil {
		return nil
	}
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	// A remount must keep the flags the kernel locked on the mount it
	// copies (nosuid, nodev, noexec, atime), or it is refused.
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return err
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
	for _, f := range []struct{ st, ms int64 }{
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if int64(st.Flags)&f.st != 0 { // Flags is 32 bits on some architectures
			flags |= uintptr(f.ms)
		}
	}
	if err := unix.Mount("", p, "", flags, ""); err != nil {
		return err
	}
	if err := unix.Statfs(p, &st); err != nil {
		return err
	}
	if st.Flags&unix.ST_RDONLY == 0 {
		return errors.New("the mount is still writable after the read-only remount")
	}
	return nil
}

// lookPath finds name as exec.LookPath would, but with the PATH of env and
// relative paths taken from dir: the child's, not this process's.
func lookPath(name string, env []string, dir string) (string, error) {
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	if strings.Contains(name, "/") {
		p := abs(name)
		if err := executable(p); err != nil {
			return "", fmt.Errorf("start %s: %w", name, err)
		}
		return p, nil
	}
	path, _ := lookup(env, "PATH")
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		p := abs(filepath.Join(d, name))
		if executable(p) != nil {
			continue
		}
		if !filepath.IsAbs(d) {
			// As os/exec (ErrDot) and so plain `run`: a program the agent
			// left in the working directory must not stand in for the
			// one the user named.
			return "", fmt.Errorf("start %s: found as %s through the relative $PATH entry %q, which is refused: give its path (./%s) or put an absolute directory in PATH", name, filepath.Join(d, name), d, name)
		}
		return p, nil
	}
	return "", fmt.Errorf("start %s: executable file not found in $PATH (inside the isolated namespaces; /tmp and /run are private there)", name)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// markCloexecFallback sets close-on-exec on every descriptor above stderr
// where close_range(2) is missing (kernels before 5.11).
func markCloexecFallback() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}
