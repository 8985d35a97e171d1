package session

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// InitCommand is the hidden subcommand under which the countersign binary,
// re-executed inside the new namespaces, runs [IsolateInit].
const InitCommand = "__isolate-init"

// ErrIsolationUnsupported is returned by [StartIsolated] where the kernel has
// no user, network and mount namespaces (everywhere but Linux).
var ErrIsolationUnsupported = errors.New("--isolate needs Linux user, network and mount namespaces; on this system run the agent in a container or VM whose only way out is the proxy")

// SetupError reports that the isolated environment could not be set up or
// failed its self-test; the child was not started.
type SetupError struct {
	Msg string
	// Perm: the failure was a refused permission, which usually means the
	// host restricts unprivileged user namespaces.
	Perm bool
	// Code is the exit code to report (127 when the command was not
	// found, else 2).
	Code int
}

func (e *SetupError) Error() string {
	if e.Perm {
		return "isolate: " + e.Msg + "; " + userNSHint()
	}
	return "isolate: " + e.Msg
}

// IsolateOptions describes one child run by [StartIsolated]: in new user,
// network, mount, PID and IPC namespaces whose only network is loopback,
// where a forwarder bridges the proxy port to the real proxy.
type IsolateOptions struct {
	// Args is the command and its arguments.
	Args []string
	// Env is the child's environment as plain `run` would give it
	// ([ChildEnv], with the proxy URL pointing at 127.0.0.1:ListenPort).
	// SSH_AUTH_SOCK and DBUS_SESSION_BUS_ADDRESS are removed unless Expose
	// names their sockets, and so is every variable holding one of Secrets.
	Env []string
	// Dir is the working directory; it stays visible even under /tmp.
	Dir            string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	ProxyAddr      string // the real proxy (host:port), dialled by the forwarder
	ListenPort     int    // the forwarder's port on the child's loopback
	CommandPath    string // the resolved executable, kept visible when under /tmp or /run
	SessionDir     string // holds the CA bundle; stays visible
	// Hide lists paths that appear empty inside: directories become an
	// empty read-only tmpfs, other files read as empty. state_dir, the CA
	// key, the audit log, password files and a configuration file holding
	// secrets belong here.
	Hide []string
	// ReadOnly lists paths that stay visible but cannot be changed inside:
	// the configuration file, the policy files and directories, and CA
	// files. The proxy reloads policies while the session runs; a policy
	// the agent could rewrite would be the agent's own.
	ReadOnly []string
	// Expose lists paths hidden by default (sockets under /tmp or /run,
	// SSH_AUTH_SOCK, the Docker and D-Bus sockets) that stay reachable. It
	// cannot name a path of Hide: those hold secrets.
	Expose []string
	// Secrets are values no environment variable of the child may hold
	// (Slack tokens, client passwords, the admin token).
	Secrets []string
	// Probes are extra host:port addresses (the machine's own addresses) to
	// which the start-up self-test proves a direct connection fails.
	Probes []string
	// Exe and InitArgs start the init process; default /proc/self/exe
	// [InitCommand]. Tests point them at the test binary.
	Exe      string
	InitArgs []string
	// SetupTimeout bounds namespace set-up and the self-test; default 30s.
	SetupTimeout time.Duration
}

// privateDirs get a fresh, empty tmpfs inside the namespaces: other
// processes' files, the Docker and D-Bus sockets and SSH agents live here.
var privateDirs = []struct {
	path string
	mode uint32
}{
	{"/tmp", 0o1777},
	{"/run", 0o755},
	{"/dev/shm", 0o1777},
}

// wellKnownSockets are hidden unless exposed, wherever they are: Docker
// Desktop and rootless Docker keep theirs under the home directory.
var wellKnownSockets = []string{".docker/run/docker.sock", ".docker/desktop/docker.sock"}

// initSpec is what the parent tells the init process, as JSON on fd 4.
type initSpec struct {
	Args       []string      `json:"args"`
	Env        []string      `json:"env"`
	Dir        string        `json:"dir"`
	ListenPort int           `json:"listen_port"`
	Private    []privateDir  `json:"private"`
	Keep       []string      `json:"keep"`
	Hide       []string      `json:"hide"`
	ReadOnly   []string      `json:"read_only,omitempty"`
	Create     []string      `json:"create,omitempty"`
	SelfTest   selfTestSpec  `json:"self_test"`
	Timeout    time.Duration `json:"timeout"`
	// OwnGroup: the init process and the child have a process group of
	// their own, to which countersign sends every signal it passes on, so
	// the init process passes none on itself (the child would get two).
	OwnGroup bool `json:"own_group,omitempty"`
	// UID and GID are countersign's, which the init process maps to
	// themselves in its user namespace (writeIDMaps).
	UID int `json:"uid"`
	GID int `json:"gid"`
}

type privateDir struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode"` // of the tmpfs root, e.g. 0o1777
}

// selfTestSpec lists what the init process checks before it starts the
// child (see selfTest).
type selfTestSpec struct {
	TCP   []string `json:"tcp"`   // direct connections that must fail
	UDP   []string `json:"udp"`   // datagram destinations that must be unroutable
	Proxy string   `json:"proxy"` // the forwarder, which must reach a countersign proxy
	Empty []string `json:"empty"` // hidden paths that must read as empty
}

// fixedTCPProbes and fixedUDPProbes stand for "the internet" in the self-test: documentation
// addresses (RFC 5737, RFC 3849) that nothing legitimate answers on, and the
// cloud metadata address.
var (
	fixedTCPProbes = []string{"198.51.100.7:443", "[2001:db8::7]:443", "169.254.169.254:80"}
	fixedUDPProbes = []string{"198.51.100.7:53", "[2001:db8::7]:53"}
)

// socketHolder says why p, which would be bound back into a private
// directory, would bring other programs' sockets with it; "" if it would
// not.
func socketHolder(p, xdg string, private []privateDir) string {
	switch {
	case slices.ContainsFunc(private, func(d privateDir) bool { return d.Path == p }):
		return "which the agent gets a private one of; the host's holds other programs' sockets (tmux's run commands on the host)"
	case xdg != "" && within(xdg, p):
		return "which holds $XDG_RUNTIME_DIR (" + xdg + ") and its systemd and D-Bus sockets"
	case within("/run/user", p), filepath.Dir(p) == "/run/user":
		return "a runtime directory of a user's session (systemd, D-Bus and agent sockets)"
	case within("/run/dbus", p):
		return "which holds the D-Bus system bus"
	case filepath.Dir(p) == "/tmp" && (filepath.Base(p) == ".X11-unix" || strings.HasPrefix(filepath.Base(p), "tmux-")):
		return "a directory of X11's or tmux's sockets"
	}
	return ""
}

// plan turns opts into the init process's instructions. resolve is
// filepath.EvalSymlinks in production; paths that do not exist are kept as
// written.
func plan(opts IsolateOptions, resolve func(string) (string, error)) (initSpec, error) {
	if len(opts.Args) == 0 {
		return initSpec{}, errors.New("isolate: no command")
	}
	if opts.ListenPort <= 0 || opts.ListenPort > 65535 {
		return initSpec{}, fmt.Errorf("isolate: bad proxy port %d", opts.ListenPort)
	}
	resolved := func(p string) string {
		p = filepath.Clean(p)
		if r, err := resolve(p); err == nil {
			return r
		}
		return p
	}
	spec := initSpec{
		Args:       slices.Clone(opts.Args),
		Dir:        opts.Dir,
		ListenPort: opts.ListenPort,
		Timeout:    opts.SetupTimeout,
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 30 * time.Second
	}
	for _, d := range privateDirs {
		p := resolved(d.path)
		if !slices.ContainsFunc(spec.Private, func(x privateDir) bool { return x.Path == p }) {
			spec.Private = append(spec.Private, privateDir{Path: p, Mode: d.mode})
		}
	}
	underPrivate := func(p string) bool {
		return slices.ContainsFunc(spec.Private, func(d privateDir) bool { return within(p, d.Path) })
	}

	expose := map[string]bool{}
	for _, p := range opts.Expose {
		expose[resolved(p)] = true
	}
	for _, p := range opts.Hide {
		if p != "" && p != "-" && filepath.IsAbs(p) && expose[resolved(p)] {
			return initSpec{}, fmt.Errorf("isolate: isolate.expose lists %s, which holds secrets countersign keeps from the agent (state_dir, the CA key, the audit log, a password or configuration file); remove it from isolate.expose", p)
		}
	}
	env, hideSockets := isolatedEnv(opts.Env, expose, resolved, opts.Secrets)
	spec.Env = env

	// The working directory and exposed paths stay visible inside a
	// private directory, but never one that holds other programs' sockets:
	// a private directory whole (the host's /tmp has tmux's and X11's; a
	// tmux socket runs commands on the host), or a runtime directory
	// (systemd's, D-Bus's, gpg-agent's), whether or not $XDG_RUNTIME_DIR
	// names it. Paths outside the private directories are not bound back,
	// so they are not checked ("/" is the usual working directory in a
	// container).
	xdg, _ := lookup(opts.Env, "XDG_RUNTIME_DIR")
	if xdg != "" && filepath.IsAbs(xdg) {
		xdg = resolved(xdg)
	} else {
		xdg = ""
	}
	type namedPath struct{ what, path string }
	checked := []namedPath{{"the working directory is", opts.Dir}}
	for _, p := range opts.Expose {
		checked = append(checked, namedPath{"isolate.expose lists", p})
	}
	if home, ok := lookup(opts.Env, "HOME"); ok {
		checked = append(checked, namedPath{"HOME is", home})
	}
	for _, c := range checked {
		if c.path == "" || !filepath.IsAbs(c.path) {
			continue
		}
		p := resolved(c.path)
		if !underPrivate(p) {
			continue
		}
		if c.what == "HOME is" && slices.ContainsFunc(spec.Private, func(d privateDir) bool { return d.Path == p }) {
			continue // not kept (below): the agent gets a private one
		}
		if reason := socketHolder(p, xdg, spec.Private); reason != "" {
			return initSpec{}, fmt.Errorf("isolate: %s %s, %s. Work in, or expose, a directory of its own, e.g. mkdir /tmp/work && cd /tmp/work", c.what, p, reason)
		}
	}

	var keep []string
	for _, p := range append([]string{opts.Dir, opts.SessionDir, opts.CommandPath}, opts.Expose...) {
		if p == "" || !filepath.IsAbs(p) {
			continue
		}
		if p = resolved(p); underPrivate(p) {
			keep = append(keep, p)
		}
	}
	// A home directory under /tmp (CI runners, containers) stays too,
	// unless it is /tmp itself.
	if home, ok := lookup(spec.Env, "HOME"); ok && filepath.IsAbs(home) {
		if home = resolved(home); underPrivate(home) && !slices.ContainsFunc(spec.Private, func(d privateDir) bool { return d.Path == home }) {
			keep = append(keep, home)
		}
	}
	spec.Keep = outermost(keep)

	var hide []string
	for _, p := range append(slices.Clone(opts.Hide), hideSockets...) {
		if p == "" || p == "-" || !filepath.IsAbs(p) {
			continue
		}
		p = resolved(p)
		if !expose[p] && !slices.Contains(hide, p) {
			hide = append(hide, p)
		}
	}
	// Shorter paths first: a file hidden inside a hidden directory is
	// already gone.
	slices.SortFunc(hide, func(a, b string) int { return len(a) - len(b) })
	spec.Hide = hide

	var readOnly []string
	for _, p := range opts.ReadOnly {
		if p == "" || p == "-" || !filepath.IsAbs(p) {
			continue
		}
		p = resolved(p)
		hidden := slices.ContainsFunc(hide, func(h string) bool { return within(p, h) })
		if !hidden && !slices.Contains(readOnly, p) {
			readOnly = append(readOnly, p)
		}
	}
	slices.SortFunc(readOnly, func(a, b string) int { return len(a) - len(b) })
	spec.ReadOnly = readOnly

	// Directories the environment names under the private ones exist
	// inside, empty.
	for _, k := range []string{"XDG_RUNTIME_DIR", "TMPDIR"} {
		if d, ok := lookup(spec.Env, k); ok && filepath.IsAbs(d) && underPrivate(resolved(d)) {
			spec.Create = append(spec.Create, resolved(d))
		}
	}

	spec.SelfTest = selfTestSpec{
		TCP:   slices.Clone(fixedTCPProbes),
		UDP:   slices.Clone(fixedUDPProbes),
		Proxy: fmt.Sprintf("127.0.0.1:%d", opts.ListenPort),
		Empty: hide,
	}
	for _, p := range opts.Probes {
		ap, err := netip.ParseAddrPort(p)
		if err != nil || ap.Addr().IsLoopback() {
			// Loopback inside is the namespace's own: reaching it proves
			// nothing.
			continue
		}
		spec.SelfTest.TCP = append(spec.SelfTest.TCP, p)
		spec.SelfTest.UDP = append(spec.SelfTest.UDP, netip.AddrPortFrom(ap.Addr(), 53).String())
	}
	return spec, nil
}

// isolatedEnv removes from env what must not follow the child into
// isolation: SSH_AUTH_SOCK and DBUS_SESSION_BUS_ADDRESS unless their socket
// is exposed, and any variable whose value holds a secret. It also returns
// the socket paths to hide (SSH agent, D-Bus session bus, Docker).
func isolatedEnv(env []string, expose map[string]bool, resolved func(string) string, secrets []string) ([]string, []string) {
	var hide []string
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if holdsSecret(v, secrets) {
			continue
		}
		var sock string
		switch k {
		case "SSH_AUTH_SOCK":
			sock = v
		case "DBUS_SESSION_BUS_ADDRESS":
			sock = dbusPath(v)
			if sock == "" {
				// An abstract socket belongs to the host's network
				// namespace: unreachable anyway.
				continue
			}
		case "DOCKER_HOST":
			if p, ok := strings.CutPrefix(v, "unix://"); ok && filepath.IsAbs(p) && !expose[resolved(p)] {
				hide = append(hide, p)
			}
		}
		if sock != "" && filepath.IsAbs(sock) {
			if !expose[resolved(sock)] {
				hide = append(hide, sock)
				continue
			}
		}
		out = append(out, kv)
	}
	if home, ok := lookup(env, "HOME"); ok && filepath.IsAbs(home) {
		for _, s := range wellKnownSockets {
			hide = append(hide, filepath.Join(home, s))
		}
	}
	return out, hide
}

// dbusPath returns the socket path of a D-Bus address such as
// "unix:path=/run/user/1000/bus,guid=…", or "" for other transports.
func dbusPath(addr string) string {
	for _, a := range strings.Split(addr, ";") {
		rest, ok := strings.CutPrefix(a, "unix:")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if p, ok := strings.CutPrefix(kv, "path="); ok {
				return p
			}
		}
	}
	return ""
}

// WithoutSecrets returns env without the variables whose value holds one
// of secrets (see holdsSecret), and the names of those left out.
func WithoutSecrets(env []string, secrets []string) (kept, dropped []string) {
	kept = make([]string, 0, len(env))
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); holdsSecret(v, secrets) {
			dropped = append(dropped, k)
		} else {
			kept = append(kept, kv)
		}
	}
	return kept, dropped
}

// holdsSecret reports whether v holds one of secrets: contains it, or for
// one shorter than 8 bytes (too short to search for), equals it.
func holdsSecret(v string, secrets []string) bool {
	for _, s := range secrets {
		switch {
		case s == "":
		case len(s) >= 8 && strings.Contains(v, s):
			return true
		case v == s:
			return true
		}
	}
	return false
}

func lookup(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// within reports whether p is dir or inside it.
func within(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// outermost returns paths without duplicates and without any path that lies
// inside another, sorted.
func outermost(paths []string) []string {
	slices.Sort(paths)
	paths = slices.Compact(paths)
	var out []string
	for _, p := range paths {
		if len(out) > 0 && within(p, out[len(out)-1]) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// MachineProbes returns host:port addresses for the self-test: each of the
// machine's own non-loopback addresses on port, which a direct connection
// from inside must not reach.
func MachineProbes(addrs []netip.Prefix, port int) []string {
	var out []string
	for _, p := range addrs {
		a := p.Addr().Unmap()
		if a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() {
			continue
		}
		if a.Is6() && a.IsLinkLocalUnicast() {
			// A link-local address needs a zone to be dialled.
			continue
		}
		out = append(out, netip.AddrPortFrom(a, uint16(port)).String())
	}
	return out
}
