//go:build linux

package session

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/countersign/countersign/internal/testinfra"
)

// checkCommand makes the test binary the isolated child: it tries every way
// out named in its argument and reports what happened, one JSON object.
const checkCommand = "__isolate-check"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case InitCommand:
			os.Exit(IsolateInit())
		case checkCommand:
			os.Exit(isolatedCheck(os.Args[2]))
		case noUserNSCommand:
			os.Exit(startWithoutUserNamespaces())
		case devptsElsewhereCommand:
			os.Exit(devptsElsewhere(os.Args[2], os.Args[3]))
		case runOnStdinCommand:
			os.Exit(runOnStdin(os.Args[2]))
		case keyringCommand:
			os.Exit(keyringHelper())
		case interruptCommand:
			os.Exit(interruptHelper(map[string]syscall.Signal{"INT": syscall.SIGINT, "TERM": syscall.SIGTERM}[os.Args[2]], os.Args[3]))
		case readKeyCommand:
			os.Exit(readKey())
		}
	}
	goleak.VerifyTestMain(m)
}

// noUserNSCommand runs StartIsolated where user namespaces are forbidden
// (user.max_user_namespaces = 0 in a user namespace of its own) and prints
// the error.
const noUserNSCommand = "__isolate-no-userns"

func startWithoutUserNamespaces() int {
	if err := os.WriteFile("/proc/sys/user/max_user_namespaces", []byte("0"), 0); err != nil {
		fmt.Println("set user.max_user_namespaces:", err)
		return 3
	}
	_, err := StartIsolated(context.Background(), IsolateOptions{
		Args: []string{"true"}, Dir: "/", ListenPort: 4000, ProxyAddr: "127.0.0.1:4000",
		Exe: "/proc/self/exe", InitArgs: []string{InitCommand},
	}, nil)
	var ue *UserNamespaceError
	if !errors.As(err, &ue) {
		fmt.Printf("StartIsolated = %v, want a UserNamespaceError\n", err)
		return 4
	}
	fmt.Println(err)
	return 0
}

// devptsElsewhereCommand runs, in user and mount namespaces of its own, an
// isolated session whose working directory holds other ways to the host's
// terminals and processes (a chroot's /dev/pts, /dev and /proc, a
// terminal bound onto a file), and prints the child's report on each. Its
// mode says where the terminal countersign runs in is: "" a host terminal,
// "console" the same while another is bound onto /dev/console, "named" a
// terminal bound onto a name of its own under /dev.
const devptsElsewhereCommand = "__isolate-devpts-elsewhere"

func devptsElsewhere(dir, mode string) int {
	fail := func(what string, err error) int {
		fmt.Printf("%s: %v\n", what, err)
		return 3
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail("make the mounts private", err)
	}
	work := filepath.Join(dir, "work")
	pts := filepath.Join(work, "chroot", "dev", "pts")
	if err := os.MkdirAll(pts, 0o755); err != nil {
		return fail("mkdir", err)
	}
	if err := unix.Mount("/dev/pts", pts, "", unix.MS_BIND, ""); err != nil {
		return fail("bind /dev/pts", err)
	}
	master, slave, err := newPTY()
	if err != nil {
		return fail("open a terminal", err)
	}
	defer master.Close()
	defer slave.Close()
	// The same terminal through a chroot's /dev/pts, bound onto a file
	// (as a container's /dev/console is), and through a chroot's whole
	// /dev, whose virtual consoles are the host's too.
	console := filepath.Join(work, "console")
	dev := filepath.Join(work, "chroot-dev")
	if err := os.WriteFile(console, nil, 0o600); err != nil {
		return fail("create", err)
	}
	if err := os.Mkdir(dev, 0o755); err != nil {
		return fail("mkdir", err)
	}
	if err := unix.Mount(slave.Name(), console, "", unix.MS_BIND, ""); err != nil {
		return fail("bind a terminal onto a file", err)
	}
	if err := unix.Mount("/dev", dev, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fail("bind /dev", err)
	}
	name := filepath.Base(slave.Name())
	others := []string{filepath.Join(pts, name), console, filepath.Join(dev, "pts", name)}
	for _, o := range others {
		f, err := os.OpenFile(o, os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			return fail("the terminal through "+o, err)
		}
		f.Close()
	}
	var consoles []string
	if f, err := os.OpenFile(filepath.Join(dev, "tty1"), os.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK, 0); err == nil {
		f.Close()
		// And a console bound onto a file of its own.
		tty := filepath.Join(work, "tty-file")
		if err := os.WriteFile(tty, nil, 0o600); err != nil {
			return fail("create", err)
		}
		if err := unix.Mount("/dev/tty1", tty, "", unix.MS_BIND, ""); err != nil {
			return fail("bind a console onto a file", err)
		}
		consoles = append(consoles, filepath.Join(dev, "tty1"), tty)
	} else {
		fmt.Fprintln(os.Stderr, "no virtual console to check:", err)
	}
	// A chroot's /proc, the host's: every process of the user.
	procs := filepath.Join(work, "chroot-proc")
	if err := os.Mkdir(procs, 0o755); err != nil {
		return fail("mkdir", err)
	}
	if err := unix.Mount("/proc", procs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fail("bind /proc", err)
	}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "countersign: this is a proxy", http.StatusBadRequest)
	}))
	defer proxy.Close()
	addr := netip.MustParseAddrPort(proxy.Listener.Addr().String())
	plan := checkPlan{OtherTerminals: others, Consoles: consoles, EmptyDirs: []string{procs}}
	// The terminal countersign runs in: a host terminal, while another
	// one is bound onto /dev/console (as a container's is), or one bound
	// onto a name of its own (as LXC's /dev/tty1 is).
	ownMaster, own, err := newPTY()
	if err != nil {
		return fail("open a terminal", err)
	}
	defer ownMaster.Close()
	defer own.Close()
	switch mode {
	case "console":
		if err := unix.Mount(slave.Name(), "/dev/console", "", unix.MS_BIND, ""); err != nil {
			return fail("bind a terminal onto /dev/console", err)
		}
		plan.OwnTerminal = "/dev/console"
	case "named":
		if err := unix.Mount(own.Name(), "/dev/tty63", "", unix.MS_BIND, ""); err != nil {
			return fail("bind a terminal onto /dev/tty63", err)
		}
		own.Close()
		if own, err = os.OpenFile("/dev/tty63", os.O_RDWR|unix.O_NOCTTY, 0); err != nil {
			return fail("open the terminal by its name", err)
		}
		plan.OwnTerminal = "/dev/tty63"
	}
	arg, _ := json.Marshal(plan)
	var stdout, stderr bytes.Buffer
	iso, err := StartIsolated(context.Background(), IsolateOptions{
		Args: []string{"/proc/self/exe", checkCommand, string(arg)}, Dir: work,
		Env:       []string{"PATH=/usr/bin:/bin"},
		ProxyAddr: addr.String(), ListenPort: int(addr.Port()),
		Exe: "/proc/self/exe", InitArgs: []string{InitCommand},
		Stdin: own, Stdout: &stdout, Stderr: &stderr,
	}, nil)
	if err != nil {
		return fail("start the session", err)
	}
	if code, err := iso.Wait(); code != 0 || err != nil {
		return fail(fmt.Sprintf("session exit %d, stderr %s", code, stderr.String()), err)
	}
	os.Stdout.Write(stdout.Bytes())
	return 0
}

// checkPlan is what the isolated child tries.
type checkPlan struct {
	TCP       []string `json:"tcp"`        // must fail
	UDP       []string `json:"udp"`        // must fail
	ProxyGet  string   `json:"proxy_get"`  // must succeed through HTTPS_PROXY/HTTP_PROXY
	Unread    []string `json:"unread"`     // must not be readable (or read as empty)
	Read      []string `json:"read"`       // must be readable
	Unmount   string   `json:"unmount"`    // umount must fail
	Fixed     []string `json:"fixed"`      // readable, but no write, remove, rename, chmod or remount may succeed
	Writable  string   `json:"writable"`   // a file that may be appended to
	NoEnv     []string `json:"no_env"`     // must be unset
	ProcCount int      `json:"proc_count"` // at most this many processes visible
	// OtherTerminals are paths to terminals of the user's outside that
	// must not open; NewTerminal asks for one to be opened from /dev/ptmx (it
	// must work, from the session's own devpts); OwnTerminal is the name
	// (tty's answer) that standard input, the terminal countersign runs
	// in, must have inside.
	OtherTerminals []string `json:"other_terminals"`
	NewTerminal    bool     `json:"new_terminal"`
	OwnTerminal    string   `json:"own_terminal"`
	// Consoles are paths to a virtual console of the host's, which must
	// read and write as /dev/null inside.
	Consoles []string `json:"consoles"`
	// EmptyDirs must be empty directories inside.
	EmptyDirs []string `json:"empty_dirs"`
}

// checkReport maps each check to "ok" or what went wrong.
type checkReport map[string]string

// changeFixed tries every way to change a read-only path and says which
// one worked, or "ok".
func changeFixed(p string) string {
	if _, err := os.ReadFile(p); err != nil {
		if _, derr := os.ReadDir(p); derr != nil {
			return "unreadable: " + err.Error()
		}
	}
	if f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0); err == nil {
		f.Close()
		return "opened for writing"
	}
	if f, err := os.Create(filepath.Join(p, "planted.rego")); err == nil {
		f.Close()
		return "created a file inside"
	}
	if err := os.Chmod(p, 0o777); err == nil {
		return "chmod"
	}
	if err := os.Rename(p, p+".moved"); err == nil {
		return "renamed"
	}
	if err := os.Remove(p); err == nil {
		return "removed"
	}
	if err := unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT, ""); err == nil {
		return "remounted writable"
	}
	if err := unix.Unmount(p, unix.MNT_DETACH); err == nil {
		return "unmounted"
	}
	return "ok"
}

func isolatedCheck(arg string) int {
	var p checkPlan
	if err := json.Unmarshal([]byte(arg), &p); err != nil {
		fmt.Println(err)
		return 3
	}
	r := checkReport{}
	for _, a := range p.TCP {
		c, err := net.DialTimeout("tcp", a, 2*time.Second)
		if err == nil {
			c.Close()
			r["tcp "+a] = "connected"
		} else {
			r["tcp "+a] = "ok"
		}
	}
	for _, a := range p.UDP {
		c, err := net.Dial("udp", a)
		if err == nil {
			_, err = c.Write([]byte("x"))
			c.Close()
		}
		if err == nil {
			r["udp "+a] = "sent"
		} else {
			r["udp "+a] = "ok"
		}
	}
	if p.ProxyGet != "" {
		proxy, _ := url.Parse(os.Getenv("HTTP_PROXY"))
		client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}, Timeout: 10 * time.Second}
		resp, err := client.Get(p.ProxyGet)
		switch {
		case err != nil:
			r["proxy get"] = err.Error()
		default:
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && string(b) == "via proxy" {
				r["proxy get"] = "ok"
			} else {
				r["proxy get"] = fmt.Sprintf("HTTP %d %q", resp.StatusCode, b)
			}
		}
	}
	for _, f := range p.Unread {
		b, err := os.ReadFile(f)
		if err == nil && len(b) > 0 {
			r["unread "+f] = "read " + strconv.Itoa(len(b)) + " bytes"
		} else {
			r["unread "+f] = "ok"
		}
	}
	for _, f := range p.Read {
		if b, err := os.ReadFile(f); err != nil || len(b) == 0 {
			r["read "+f] = fmt.Sprintf("%d bytes, %v", len(b), err)
		} else {
			r["read "+f] = "ok"
		}
	}
	for _, f := range p.Fixed {
		r["fixed "+f] = changeFixed(f)
	}
	if p.Writable != "" {
		if f, err := os.OpenFile(p.Writable, os.O_WRONLY|os.O_APPEND, 0); err != nil {
			r["writable"] = err.Error()
		} else {
			_, err = f.WriteString("more\n")
			f.Close()
			r["writable"] = "ok"
			if err != nil {
				r["writable"] = err.Error()
			}
		}
	}
	if p.Unmount != "" {
		if err := unix.Unmount(p.Unmount, unix.MNT_DETACH); err == nil {
			r["unmount"] = "unmounted"
		} else {
			r["unmount"] = "ok"
		}
	}
	for _, k := range p.NoEnv {
		if v, ok := os.LookupEnv(k); ok {
			r["env "+k] = "set to " + v
		} else {
			r["env "+k] = "ok"
		}
	}
	for _, t := range p.OtherTerminals {
		// Gone, or /dev/null: anything else (a permission error) would
		// not prove the terminal out of reach.
		r["other terminal "+t] = "ok"
		f, err := os.OpenFile(t, os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				r["other terminal "+t] = err.Error()
			}
			continue
		}
		var st, null unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) != nil || unix.Stat("/dev/null", &null) != nil || st.Rdev != null.Rdev {
			r["other terminal "+t] = "opened"
		}
		f.Close()
	}
	for _, d := range p.EmptyDirs {
		if entries, err := os.ReadDir(d); err != nil || len(entries) != 0 {
			r["empty "+d] = fmt.Sprintf("%d entries, %v", len(entries), err)
		} else {
			r["empty "+d] = "ok"
		}
	}
	if len(p.OtherTerminals) > 0 {
		r["terminals listed"] = "ok"
		if entries, err := os.ReadDir("/dev/pts"); err != nil || len(entries) != 1 || entries[0].Name() != "ptmx" {
			r["terminals listed"] = fmt.Sprintf("%v, %v", entries, err)
		}
	}
	for _, c := range p.Consoles {
		var st, null unix.Stat_t
		if unix.Stat(c, &st) != nil || unix.Stat("/dev/null", &null) != nil || st.Rdev != null.Rdev {
			r["console "+c] = "is not /dev/null"
		} else {
			r["console "+c] = "ok"
		}
	}
	if p.NewTerminal {
		r["new terminal"] = openTerminal()
	}
	if p.OwnTerminal != "" {
		var in, named unix.Stat_t
		switch {
		case unix.Fstat(0, &in) != nil || in.Mode&unix.S_IFMT != unix.S_IFCHR:
			r["own terminal"] = "standard input is not a terminal"
		case unix.Stat(p.OwnTerminal, &named) != nil || named.Rdev != in.Rdev || named.Dev != in.Dev || named.Ino != in.Ino:
			r["own terminal"] = p.OwnTerminal + " is not it"
		default:
			r["own terminal"] = "ok"
			if _, err := unix.Write(0, []byte("still mine\n")); err != nil {
				r["own terminal"] = "cannot be written: " + err.Error()
			}
			tty := exec.Command("tty")
			tty.Stdin = os.Stdin
			if out, err := tty.Output(); err != nil || string(out) != p.OwnTerminal+"\n" {
				r["own terminal"] = fmt.Sprintf("tty printed %q, %v", out, err)
			}
		}
	}
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb":
			if v == "0000000000000000" {
				r[k] = "ok"
			} else {
				r[k] = v
			}
		case "NoNewPrivs":
			if v == "1" {
				r[k] = "ok"
			} else {
				r[k] = v
			}
		}
	}
	if p.ProcCount > 0 {
		entries, _ := os.ReadDir("/proc")
		n := 0
		for _, e := range entries {
			if _, err := strconv.Atoi(e.Name()); err == nil {
				n++
			}
		}
		if n <= p.ProcCount {
			r["processes"] = "ok"
		} else {
			r["processes"] = fmt.Sprintf("%d visible", n)
		}
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
	return 0
}

// openTerminal opens a pseudo-terminal as a program would (/dev/ptmx, then
// the slave it names) and passes a line through it.
func openTerminal() string {
	m, slave, err := newPTY()
	if err != nil {
		return err.Error()
	}
	defer m.Close()
	defer slave.Close()
	if _, err := m.Write([]byte("hello\n")); err != nil {
		return "write: " + err.Error()
	}
	buf := make([]byte, 16)
	n, err := slave.Read(buf)
	if err != nil || string(buf[:n]) != "hello\n" {
		return fmt.Sprintf("read %q, %v", buf[:n], err)
	}
	return "ok"
}

// newPTY opens a pseudo-terminal pair from /dev/ptmx.
func newPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	var n int
	err = withFd(master, func(fd int) error {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
			return fmt.Errorf("unlock: %w", err)
		}
		var err error
		n, err = unix.IoctlGetInt(fd, unix.TIOCGPTN)
		return err
	})
	if err == nil {
		slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	}
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

func withFd(f *os.File, fn func(int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// fakeProxy answers like countersign's proxy port: origin-form requests get
// "countersign: this is a proxy", absolute-form GETs of http://upstream.test
// are answered "via proxy".
func fakeProxy(t *testing.T) *httptest.Server {
	t.Helper()
	srv := newFakeProxy()
	t.Cleanup(srv.Close)
	return srv
}

func newFakeProxy() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() {
			http.Error(w, "countersign: this is a proxy", http.StatusBadRequest)
			return
		}
		if r.URL.Host == "upstream.test" {
			io.WriteString(w, "via proxy")
			return
		}
		http.Error(w, "countersign: denied", http.StatusForbidden)
	}))
}

// requireUserNamespaces fails (never skips) with what to change where the
// kernel refuses the namespaces.
func requireUserNamespaces(t *testing.T, err error) {
	t.Helper()
	var ue *UserNamespaceError
	if errors.As(err, &ue) {
		t.Fatalf("this host does not allow the namespaces --isolate needs: %v", err)
	}
}

type isolatedRun struct {
	stdout, stderr bytes.Buffer
	code           int
	err            error
}

func runIsolated(t *testing.T, opts IsolateOptions) *isolatedRun {
	t.Helper()
	r := &isolatedRun{}
	opts.Stdout, opts.Stderr = &r.stdout, &r.stderr
	if opts.Exe == "" {
		opts.Exe, opts.InitArgs = "/proc/self/exe", []string{InitCommand}
	}
	iso, err := StartIsolated(t.Context(), opts, nil)
	if err != nil {
		requireUserNamespaces(t, err)
		r.err = err
		return r
	}
	r.code, r.err = iso.Wait()
	return r
}

func TestIsolatedChildReachesOnlyTheProxy(t *testing.T) {
	proxy := fakeProxy(t)
	proxyAddr := netip.MustParseAddrPort(proxy.Listener.Addr().String())

	// Decoys on another loopback address, on every address of the
	// machine, and UDP "resolvers".
	decoys := []*testinfra.Decoy{testinfra.StartDecoy(t, "tcp", "127.0.0.2:0")}
	udpDecoys := []*testinfra.Decoy{}
	for _, a := range testinfra.MachineAddrs(t) {
		decoys = append(decoys, testinfra.StartDecoy(t, "tcp", netip.AddrPortFrom(a, 0).String()))
		udpDecoys = append(udpDecoys, testinfra.StartDecoy(t, "udp", netip.AddrPortFrom(a, 0).String()))
	}

	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	state := filepath.Join(work, "state")
	session := filepath.Join(dir, "session")
	for _, d := range []string{work, state, session} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) string {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey := write(filepath.Join(state, "ca-key.pem"), "-----BEGIN EC PRIVATE KEY-----\n")
	token := write(filepath.Join(state, "admin-token"), "admin-token-value\n")
	elsewhereKey := write(filepath.Join(dir, "key-outside-state.pem"), "secret key\n")
	notes := write(filepath.Join(work, "notes.txt"), "the agent's work\n")
	bundle := write(filepath.Join(session, "ca-bundle.pem"), "-----BEGIN CERTIFICATE-----\n")
	config := write(filepath.Join(work, "countersign.yaml"), "policy:\n  paths: [policies]\n")
	policies := filepath.Join(work, "policies")
	if err := os.Mkdir(policies, 0o700); err != nil {
		t.Fatal(err)
	}
	rules := write(filepath.Join(policies, "policy.rego"), "package countersign\n")

	// Another terminal of the user's, and the one countersign runs in.
	otherMaster, other, err := newPTY()
	if err != nil {
		t.Fatalf("open a terminal: %v", err)
	}
	defer otherMaster.Close()
	defer other.Close()
	ownMaster, own, err := newPTY()
	if err != nil {
		t.Fatalf("open a terminal: %v", err)
	}
	defer ownMaster.Close()
	defer own.Close()

	plan := checkPlan{
		OtherTerminals: []string{other.Name()},
		NewTerminal:    true,
		OwnTerminal:    "/dev/console",
		Consoles:       hostConsoles(t, "/dev"),
		UDP:            []string{"198.51.100.7:53", "[2001:db8::7]:53"},
		ProxyGet:       "http://upstream.test/",
		Unread:         []string{caKey, token, elsewhereKey},
		Read:           []string{notes, bundle},
		Unmount:        state,
		Fixed:          []string{config, policies, rules},
		Writable:       notes,
		NoEnv:          []string{"SSH_AUTH_SOCK", "SLACK_TOKEN"},
		ProcCount:      2, // the init process and this one
	}
	for _, d := range decoys {
		plan.TCP = append(plan.TCP, d.Addr)
	}
	for _, d := range udpDecoys {
		plan.UDP = append(plan.UDP, d.Addr)
	}
	arg, _ := json.Marshal(plan)
	proxyURL := fmt.Sprintf("http://s-test:pw@127.0.0.1:%d", proxyAddr.Port())
	env := ChildEnv([]string{
		"PATH=/usr/bin:/bin",
		"SSH_AUTH_SOCK=/tmp/ssh-XXXX/agent.1",
		"SLACK_TOKEN=xoxb-123456789-secret",
	}, EnvOptions{ProxyURL: proxyURL, CABundle: bundle, CACert: bundle, SessionID: "s-test"})

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r := runIsolated(t, IsolateOptions{
		Args:        []string{exe, checkCommand, string(arg)},
		CommandPath: exe,
		Env:         env,
		Dir:         work,
		Stdin:       own,
		ProxyAddr:   proxyAddr.String(),
		ListenPort:  int(proxyAddr.Port()),
		SessionDir:  session,
		Hide:        []string{state, elsewhereKey},
		ReadOnly:    []string{config, policies},
		Secrets:     []string{"xoxb-123456789-secret"},
		Probes:      plan.TCP,
	})
	if r.err != nil || r.code != 0 {
		t.Fatalf("isolated run: code %d, err %v\nstdout %s\nstderr %s", r.code, r.err, r.stdout.String(), r.stderr.String())
	}
	var got checkReport
	if err := json.Unmarshal(r.stdout.Bytes(), &got); err != nil {
		t.Fatalf("child report %q: %v (stderr %s)", r.stdout.String(), err, r.stderr.String())
	}
	t.Logf("inside: %v\nstderr: %s", got, r.stderr.String())
	want := checkReport{}
	for k := range got {
		want[k] = "ok"
	}
	if len(got) < len(plan.TCP)+len(plan.UDP)+len(plan.Unread)+len(plan.Read)+len(plan.NoEnv)+12 {
		t.Errorf("the child ran only %d checks: %v", len(got), got)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("inside the namespaces (-want +got):\n%s", diff)
	}
	for _, d := range append(decoys, udpDecoys...) {
		if n := d.Hits.Load(); n != 0 {
			t.Errorf("decoy %s saw %d connections or datagrams, want 0", d.Addr, n)
		}
	}
	// The files are untouched outside, and the working directory was
	// the agent's to write.
	if b, _ := os.ReadFile(caKey); !strings.HasPrefix(string(b), "-----BEGIN") {
		t.Errorf("the CA key outside the namespace changed: %q", b)
	}
	if b, _ := os.ReadFile(rules); string(b) != "package countersign\n" {
		t.Errorf("the policy outside the namespace changed: %q", b)
	}
	if entries, _ := os.ReadDir(policies); len(entries) != 1 {
		t.Errorf("the policy directory holds %d entries, want its 1", len(entries))
	}
	if b, _ := os.ReadFile(notes); string(b) != "the agent's work\nmore\n" {
		t.Errorf("notes.txt outside reads %q: the agent could not write its working directory", b)
	}
}

// hostConsoles returns dir/tty1 when it is a virtual console this user can
// open (the tests run as root), or nothing on a machine without one.
func hostConsoles(t *testing.T, dir string) []string {
	t.Helper()
	p := filepath.Join(dir, "tty1")
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Logf("no virtual console to check: %v", err)
		return nil
	}
	f.Close()
	return []string{p}
}

// A second mount of the host's devpts (a chroot's /dev/pts) is covered
// too: the user's terminals are there as well.
func TestIsolatedHidesTerminalsMountedElsewhere(t *testing.T) {
	for _, mode := range []string{"", "console", "named"} {
		t.Run("own terminal "+mode, func(t *testing.T) { hidesTerminalsMountedElsewhere(t, mode) })
	}
}

func hidesTerminalsMountedElsewhere(t *testing.T, mode string) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), exe, devptsElsewhereCommand, t.TempDir(), mode)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s%s", err, out, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("helper: %s", stderr.String())
	}
	var got checkReport
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("report %q: %v", out, err)
	}
	want := checkReport{}
	for k := range got {
		want[k] = "ok"
	}
	if len(got) < 4 || got["terminals listed"] == "" {
		t.Errorf("the child ran only %d checks: %v", len(got), got)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("inside (-want +got):\n%s", diff)
	}
}

func TestIsolatedExitCodesSignalsAndLeftovers(t *testing.T) {
	proxy := fakeProxy(t)
	port := int(netip.MustParseAddrPort(proxy.Listener.Addr().String()).Port())
	base := IsolateOptions{
		Env:        []string{"PATH=/usr/bin:/bin"},
		Dir:        "/",
		ProxyAddr:  proxy.Listener.Addr().String(),
		ListenPort: port,
	}

	t.Run("exit code passes through", func(t *testing.T) {
		opts := base
		opts.Args = []string{"sh", "-c", "exit 7"}
		if r := runIsolated(t, opts); r.err != nil || r.code != 7 {
			t.Fatalf("code %d err %v stderr %s", r.code, r.err, r.stderr.String())
		}
	})

	t.Run("command not found", func(t *testing.T) {
		opts := base
		opts.Args = []string{"countersign-no-such-command"}
		r := runIsolated(t, opts)
		var se *SetupError
		if !errors.As(r.err, &se) || se.Code != 127 || !strings.Contains(se.Error(), "not found") {
			t.Fatalf("err %v, want a SetupError with code 127", r.err)
		}
	})

	t.Run("SIGTERM reaches the child and leftovers die with it", func(t *testing.T) {
		marker := "987" + strconv.Itoa(os.Getpid())
		opts := base
		var out bytes.Buffer
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		opts.Args = []string{"sh", "-c", "sleep " + marker + " & echo started; exec sleep 600"}
		opts.Stdout, opts.Stderr = pw, &out
		opts.Exe, opts.InitArgs = "/proc/self/exe", []string{InitCommand}
		iso, err := StartIsolated(t.Context(), opts, nil)
		pw.Close()
		if err != nil {
			requireUserNamespaces(t, err)
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(pr).ReadString('\n')
		if line != "started\n" {
			t.Fatalf("child said %q", line)
		}
		// Its cmdline reads empty while it is in execve (found flaky
		// under load): poll, bounded.
		for deadline := time.Now().Add(5 * time.Second); !processRunning(marker) && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if !processRunning(marker) {
			t.Fatalf("the background sleep %s is not running", marker)
		}
		if err := iso.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		code, err := iso.Wait()
		if err != nil || code != 128+int(syscall.SIGTERM) {
			t.Fatalf("code %d err %v, want %d", code, err, 128+int(syscall.SIGTERM))
		}
		if processRunning(marker) {
			t.Errorf("the background sleep %s outlived the session", marker)
		}
	})
}

// processRunning reports whether a process whose command line holds marker
// runs on this machine (seen from the test's own /proc).
func processRunning(marker string) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(marker)) {
			stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			// A zombie has exited.
			if f := strings.Fields(string(stat)); len(f) > 2 && f[2] == "Z" {
				continue
			}
			return true
		}
	}
	return false
}

func TestIsolatedSelfTestRefusesAProxyThatIsNotCountersign(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "some other server")
	}))
	defer other.Close()
	port := int(netip.MustParseAddrPort(other.Listener.Addr().String()).Port())
	r := runIsolated(t, IsolateOptions{
		Args:       []string{"sh", "-c", "echo child ran"},
		Env:        []string{"PATH=/usr/bin:/bin"},
		Dir:        "/",
		ProxyAddr:  other.Listener.Addr().String(),
		ListenPort: port,
	})
	var se *SetupError
	if !errors.As(r.err, &se) || !strings.Contains(se.Error(), "self-test") || !strings.Contains(se.Error(), "not a countersign proxy") {
		t.Fatalf("err %v, want a self-test failure", r.err)
	}
	if strings.Contains(r.stdout.String(), "child ran") {
		t.Error("the child ran although the self-test failed")
	}
}

func TestLookPathUsesTheChildsPathAndDir(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"agent": 0o755, "data": 0o644} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"PATH=/nonexistent:" + bin}
	tests := []struct {
		name, give, want, wantErr string
	}{
		{name: "from PATH", give: "agent", want: filepath.Join(bin, "agent")},
		{name: "relative to dir", give: "./bin/agent", want: filepath.Join(dir, "bin", "agent")},
		{name: "absolute", give: filepath.Join(bin, "agent"), want: filepath.Join(bin, "agent")},
		{name: "not executable", give: "./bin/data", wantErr: "not an executable"},
		{name: "missing", give: "claude", wantErr: "not found in $PATH"},
	}
	// A program planted in the working directory does not stand in for
	// one named bare through an empty, "." or relative PATH entry, as
	// with os/exec's ErrDot (found by review).
	if err := os.WriteFile(filepath.Join(dir, "claude"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, name string }{
		{"PATH=:" + bin, "claude"}, {"PATH=.:" + bin, "claude"}, {"PATH=bin:/usr/bin", "agent"},
	} {
		got, err := lookPath(c.name, []string{c.path}, dir)
		if err == nil || !strings.Contains(err.Error(), "relative $PATH entry") {
			t.Errorf("%s: lookPath(%s) = %q, %v; want the relative entry refused", c.path, c.name, got, err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lookPath(tt.give, env, dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("lookPath(%q) = %q, %v, want error %q", tt.give, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("lookPath(%q) = %q, %v, want %q", tt.give, got, err, tt.want)
			}
		})
	}
}

func TestNamespaceErrorsNameTheSysctls(t *testing.T) {
	for _, err := range []error{
		&UserNamespaceError{Err: syscall.EPERM},
		&SetupError{Msg: "bring up loopback: operation not permitted", Perm: true},
	} {
		msg := err.Error()
		for _, want := range []string{"kernel.unprivileged_userns_clone", "user.max_user_namespaces", "kernel.apparmor_restrict_unprivileged_userns", "container"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%q does not name %s", msg, want)
			}
		}
	}
	if msg := (&SetupError{Msg: "self-test failed"}).Error(); strings.Contains(msg, "sysctl") {
		t.Errorf("a self-test failure blames the sysctls: %q", msg)
	}
}

func TestStartIsolatedWhereUserNamespacesAreForbidden(t *testing.T) {
	// The limit is per user namespace: set to 0 in one of our own, it
	// forbids new ones there without touching the host.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), exe, noUserNSCommand)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, want := range []string{"cannot create user, network and mount namespaces", "user.max_user_namespaces = 0", "kernel.unprivileged_userns_clone"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("error %q does not say %q", out, want)
		}
	}
}

func TestUnescapeMountPath(t *testing.T) {
	for give, want := range map[string]string{
		"/dev/pts":                  "/dev/pts",
		`/srv/my\040chroot/dev/pts`: "/srv/my chroot/dev/pts",
		`/a\134b`:                   `/a\b`,
		`/trailing\04`:              `/trailing\04`,
		`/not\09octal`:              `/not\09octal`,
	} {
		if got := unescapeMountPath(give); got != want {
			t.Errorf("unescapeMountPath(%q) = %q, want %q", give, got, want)
		}
	}
}
