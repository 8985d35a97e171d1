package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one proxy under test, running as its own process so that its CPU
// time and memory can be read from /proc.
type proc struct {
	name string
	cmd  *exec.Cmd
	// addr is the proxy's host:port; approvals is countersign's approval
	// base URL.
	addr      string
	approvals string
	// dir is the process's own directory (state_dir, confdir); audit is
	// countersign's audit log.
	dir   string
	audit string

	out    *tail
	exited chan struct{}
	err    error // set before exited is closed
}

// cpu is the process's user plus system CPU time so far.
func (p *proc) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) of /proc/PID/stat.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse /proc stat: %w", err)
	}
	return time.Duration(utime+stime) * time.Second / time.Duration(clockTicks()), nil
}

// memory returns VmRSS and VmHWM (peak resident set) in bytes.
func (p *proc) memory() (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	return parseStatusMemory(b)
}

func parseStatusMemory(b []byte) (rss, hwm int64, err error) {
	found := 0
	for line := range strings.Lines(string(b)) {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("unexpected %s line %q", key, line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse %s: %w", key, err)
		}
		if key == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("VmRSS or VmHWM missing from /proc status")
	}
	return rss, hwm, nil
}

var (
	clkOnce sync.Once
	clkTck  int64 = 100
)

// clockTicks is sysconf(_SC_CLK_TCK), read from the auxiliary vector
// (AT_CLKTCK); 100 when it cannot be read.
func clockTicks() int64 {
	clkOnce.Do(func() {
		b, err := os.ReadFile("/proc/self/auxv")
		if err != nil {
			return
		}
		const atClkTck = 17
		for len(b) >= 16 {
			k, v := binary.NativeEndian.Uint64(b), binary.NativeEndian.Uint64(b[8:])
			b = b[16:]
			if k == atClkTck && v > 0 {
				clkTck = int64(v)
				return
			}
		}
	})
	return clkTck
}

// stop asks the process to stop (SIGTERM) and kills it after grace.
func (p *proc) stop(grace time.Duration) {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// startProc starts bin and waits until ready reports the process listening.
// onLine sees every line the process prints (stdout and stderr) and returns
// the proxy address once it has seen it; ready, when set, is polled instead.
func startProc(name, dir, bin string, args []string, onLine func(string) (addr, approvals string, ok bool), ready func() (string, bool), timeout time.Duration) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir)
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	// Its own process group: a ^C to the harness reaches the harness, which
	// stops its children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, dir: dir, out: &tail{max: 64 << 10}, exited: make(chan struct{})}
	found := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.out.add(line)
			if onLine != nil {
				if a, b, ok := onLine(line); ok {
					select {
					case found <- [2]string{a, b}:
					default:
					}
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		close(p.exited)
	}()

	deadline := time.After(timeout)
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case a := <-found:
			p.addr, p.approvals = a[0], a[1]
			return p, nil
		case <-p.exited:
			return nil, fmt.Errorf("%s exited before listening (%v):\n%s", name, p.err, p.out.String())
		case <-deadline:
			p.stop(5 * time.Second)
			return nil, fmt.Errorf("%s did not start listening within %s:\n%s", name, timeout, p.out.String())
		case <-poll.C:
			if ready != nil {
				if addr, ok := ready(); ok {
					p.addr = addr
					return p, nil
				}
			}
		}
	}
}

// tail keeps the last max bytes a process printed, for error messages.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, line...)
	t.buf = append(t.buf, '\n')
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max/2:]...)
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// csLine is what countersign serve prints once it listens.
var csLine = regexp.MustCompile(`countersign: proxy on (\S+), approvals on (\S+)`)

// csOptions describes one countersign instance.
type csOptions struct {
	name  string
	fsync bool
	// policies are directories or files of Rego loaded together; none
	// means the built-in policy.
	policies []string
}

// startCountersign runs the real binary: countersign serve with a generated
// configuration pointing at the local upstream.
func (h *harness) startCountersign(o csOptions) (*proc, error) {
	dir, err := os.MkdirTemp(h.tmp, "countersign-")
	if err != nil {
		return nil, err
	}
	auditPath := filepath.Join(dir, "audit.jsonl")
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "listen: 127.0.0.1:0\n")
	fmt.Fprintf(&cfg, "state_dir: %q\n", dir)
	fmt.Fprintf(&cfg, "ca: {cert: %q, key: %q}\n", h.caCert, h.caKey)
	fmt.Fprintf(&cfg, "upstream:\n  ca_files: [%q]\n  allow_addresses: [\"127.0.0.0/8\"]\n  resolve: {%q: %q}\n",
		h.upCAFile, benchHost+":443", h.up.addr)
	fmt.Fprintf(&cfg, "approval:\n  listen: 127.0.0.1:0\n")
	fmt.Fprintf(&cfg, "audit:\n  path: %q\n  fsync: %v\n", auditPath, o.fsync)
	fmt.Fprintf(&cfg, "log: {level: warn}\n")
	cfgPath := filepath.Join(dir, "countersign.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		return nil, err
	}
	args := []string{"serve", "--config", cfgPath}
	for _, p := range o.policies {
		args = append(args, "--policy", p)
	}
	p, err := startProc(o.name, dir, h.countersignBin, args, func(line string) (string, string, bool) {
		m := csLine.FindStringSubmatch(line)
		if m == nil {
			return "", "", false
		}
		return m[1], m[2], true
	}, nil, 2*time.Minute)
	if err != nil {
		return nil, err
	}
	p.audit = auditPath
	return p, nil
}

var baselineLine = regexp.MustCompile(`baseline: proxy on (\S+)`)

// startBaseline runs bare goproxy interception (internal/bench/baseline).
func (h *harness) startBaseline(name string) (*proc, error) {
	dir, err := os.MkdirTemp(h.tmp, "baseline-")
	if err != nil {
		return nil, err
	}
	return startProc(name, dir, h.baselineBin,
		[]string{"-ca-cert", h.caCert, "-ca-key", h.caKey, "-upstream-ca", h.upCAFile, "-upstream", h.up.addr},
		func(line string) (string, string, bool) {
			m := baselineLine.FindStringSubmatch(line)
			if m == nil {
				return "", "", false
			}
			return m[1], "", true
		}, nil, time.Minute)
}

// startMitmdump runs mitmproxy's mitmdump as a plain intercepting proxy with
// its own CA (in a fresh confdir) and the upstream's CA trusted.
func (h *harness) startMitmdump() (*proc, error) {
	dir, err := os.MkdirTemp(h.tmp, "mitmdump-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	caFile := filepath.Join(dir, "mitmproxy-ca-cert.pem")
	args := []string{
		"--listen-host", "127.0.0.1", "--listen-port", strconv.Itoa(port),
		"--set", "confdir=" + dir,
		"--set", "ssl_verify_upstream_trusted_ca=" + h.upCAFile,
		// Quiet: printing every flow would be measuring the terminal.
		"-q",
	}
	return startProc("mitmdump", dir, h.mitmdumpBin, args, nil, func() (string, bool) {
		if _, err := os.Stat(caFile); err != nil {
			return "", false
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return "", false
		}
		c.Close()
		return addr, true
	}, time.Minute)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// build compiles a main package of this module into dir.
func build(root, dir, pkg, name string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w", pkg, err)
	}
	return out, nil
}

// moduleRoot is the directory holding go.mod, from the working directory
// up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory: run from the countersign module")
		}
		dir = parent
	}
}

// raiseFileLimit lifts RLIMIT_NOFILE (the hard limit too when root) so that
// the harness and its children, which inherit it, can hold n connections.
func raiseFileLimit(n uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur >= n {
		return lim.Cur, nil
	}
	want := syscall.Rlimit{Cur: n, Max: max(lim.Max, n)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		// Not root: as far as the hard limit goes.
		want = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err2 != nil {
			return lim.Cur, err
		}
	}
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}
