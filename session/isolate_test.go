package session

import (
	"io/fs"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fakeResolve resolves the symlinks of a made-up file system.
func fakeResolve(links map[string]string) func(string) (string, error) {
	return func(p string) (string, error) {
		for from, to := range links {
			if p == from || strings.HasPrefix(p, from+"/") {
				return to + strings.TrimPrefix(p, from), nil
			}
		}
		if strings.Contains(p, "missing") {
			return "", fs.ErrNotExist
		}
		return p, nil
	}
}

func TestPlan(t *testing.T) {
	base := IsolateOptions{
		Args:        []string{"claude", "--yes"},
		Dir:         "/home/alice/shop",
		ListenPort:  4000,
		CommandPath: "/usr/local/bin/claude",
		SessionDir:  "/tmp/countersign-s-1-123",
		Hide:        []string{"/home/alice/.countersign", "/home/alice/.countersign/ca-key.pem", "-", "", "relative/path"},
		Env: []string{
			"HOME=/home/alice", "PATH=/usr/bin",
			"SSH_AUTH_SOCK=/tmp/ssh-abc/agent.12",
			"DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus,guid=1",
			"XDG_RUNTIME_DIR=/run/user/1000",
			"SLACK_BOT_TOKEN=xoxb-0123456789",
			"NOTES=the webhook is https://hooks.slack.com/services/T/B/secretsecret",
		},
		Secrets: []string{"xoxb-0123456789", "https://hooks.slack.com/services/T/B/secretsecret", ""},
		Probes:  []string{"192.0.2.2:4000", "[fd00::2]:4000", "127.0.0.2:4000"},
	}
	homeSockets := []string{"/home/alice/.docker/run/docker.sock", "/home/alice/.docker/desktop/docker.sock"}
	tests := []struct {
		name  string
		links map[string]string
		give  func(*IsolateOptions)
		want  initSpec
	}{
		{
			name: "defaults: sockets hidden, variables and secrets dropped",
			give: func(*IsolateOptions) {},
			want: initSpec{
				Keep: []string{"/tmp/countersign-s-1-123"},
				Hide: append([]string{
					"/home/alice/.countersign",
					"/tmp/ssh-abc/agent.12",
					"/run/user/1000/bus",
					"/home/alice/.countersign/ca-key.pem",
				}, homeSockets...),
				Env:    []string{"HOME=/home/alice", "PATH=/usr/bin", "XDG_RUNTIME_DIR=/run/user/1000"},
				Create: []string{"/run/user/1000"},
			},
		},
		{
			name: "exposed SSH agent and D-Bus keep their variables and sockets",
			give: func(o *IsolateOptions) {
				o.Expose = []string{"/tmp/ssh-abc/agent.12", "/run/user/1000/bus", "/run/docker.sock"}
			},
			want: initSpec{
				Keep: []string{"/run/docker.sock", "/run/user/1000/bus", "/tmp/countersign-s-1-123", "/tmp/ssh-abc/agent.12"},
				Hide: append([]string{"/home/alice/.countersign", "/home/alice/.countersign/ca-key.pem"}, homeSockets...),
				Env: []string{"HOME=/home/alice", "PATH=/usr/bin",
					"SSH_AUTH_SOCK=/tmp/ssh-abc/agent.12",
					"DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus,guid=1",
					"XDG_RUNTIME_DIR=/run/user/1000"},
				Create: []string{"/run/user/1000"},
			},
		},
		{
			name: "a working directory and command under /tmp stay, nested keeps collapse",
			give: func(o *IsolateOptions) {
				o.Dir = "/tmp/proj"
				o.CommandPath = "/tmp/proj/bin/agent"
				o.SessionDir = "/tmp/proj/.session"
				o.Env = []string{"PATH=/usr/bin", "DOCKER_HOST=unix:///var/run/docker.sock"}
				o.Hide = []string{"/tmp/proj/state"}
			},
			links: map[string]string{"/var/run": "/run"},
			want: initSpec{
				Keep: []string{"/tmp/proj"},
				Hide: []string{"/run/docker.sock", "/tmp/proj/state"},
				Env:  []string{"PATH=/usr/bin", "DOCKER_HOST=unix:///var/run/docker.sock"},
			},
		},
		{
			name: "a home under /tmp stays; TMPDIR exists, empty",
			give: func(o *IsolateOptions) {
				o.Env = []string{"HOME=/tmp/runner/home", "TMPDIR=/tmp/runner/tmp"}
				o.Hide = nil
			},
			want: initSpec{
				Keep:   []string{"/tmp/countersign-s-1-123", "/tmp/runner/home"},
				Hide:   []string{"/tmp/runner/home/.docker/run/docker.sock", "/tmp/runner/home/.docker/desktop/docker.sock"},
				Env:    []string{"HOME=/tmp/runner/home", "TMPDIR=/tmp/runner/tmp"},
				Create: []string{"/tmp/runner/tmp"},
			},
		},
		{
			name: "HOME=/tmp does not make /tmp shared",
			give: func(o *IsolateOptions) {
				o.Env = []string{"HOME=/tmp"}
				o.Hide = nil
			},
			want: initSpec{
				Keep: []string{"/tmp/countersign-s-1-123"},
				Hide: []string{"/tmp/.docker/run/docker.sock", "/tmp/.docker/desktop/docker.sock"},
				Env:  []string{"HOME=/tmp"},
			},
		},
		{
			name: "read-only paths: resolved, relative ones and ones inside hidden paths dropped",
			give: func(o *IsolateOptions) {
				o.Env = nil
				o.ReadOnly = []string{"/home/alice/shop/policies", "/home/alice/shop/countersign.yaml", "/home/alice/.countersign/ca.pem", "policies", "-", "/home/alice/shop/policies"}
			},
			links: map[string]string{"/home/alice/shop/policies": "/srv/policies"},
			want: initSpec{
				Keep:     []string{"/tmp/countersign-s-1-123"},
				Hide:     []string{"/home/alice/.countersign", "/home/alice/.countersign/ca-key.pem"},
				ReadOnly: []string{"/srv/policies", "/home/alice/shop/countersign.yaml"},
				Env:      []string{},
			},
		},
		{
			name: "symlinked state_dir is hidden at its target",
			give: func(o *IsolateOptions) {
				o.Env = nil
				o.Hide = []string{"/home/alice/.countersign"}
				o.Dir = "/home/alice"
			},
			links: map[string]string{"/home/alice/.countersign": "/data/countersign"},
			want: initSpec{
				Keep: []string{"/tmp/countersign-s-1-123"},
				Hide: []string{"/data/countersign"},
				Env:  []string{},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := base
			tt.give(&opts)
			got, err := plan(opts, fakeResolve(tt.links))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(initSpec{}, "Args", "Dir", "ListenPort", "Private", "SelfTest", "Timeout"), cmpopts.EquateEmpty(),
				cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("plan() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanRefusesToExposeWhatHoldsSecrets(t *testing.T) {
	opts := IsolateOptions{
		Args: []string{"sh"}, ListenPort: 4000,
		Hide:   []string{"/home/alice/.countersign", "/etc/cs/ca-key.pem"},
		Expose: []string{"/run/docker.sock", "/data/cs"},
	}
	links := map[string]string{"/home/alice/.countersign": "/data/cs"}
	_, err := plan(opts, fakeResolve(links))
	if err == nil || !strings.Contains(err.Error(), "isolate.expose lists /home/alice/.countersign") {
		t.Errorf("plan() error = %v, want a refusal naming the state directory", err)
	}
	opts.Expose = []string{"/run/docker.sock"}
	if _, err := plan(opts, fakeResolve(links)); err != nil {
		t.Errorf("plan() with a socket exposed: %v", err)
	}
}

// The host's /tmp (and /run, /dev/shm) whole, or a directory holding
// $XDG_RUNTIME_DIR, would put other programs' sockets in the agent's reach:
// a tmux socket runs commands on the host. Neither may be the working
// directory or exposed; a directory inside /tmp may.
func TestPlanRefusesPrivateRootsWhole(t *testing.T) {
	base := IsolateOptions{Args: []string{"sh"}, ListenPort: 4000, Env: []string{"XDG_RUNTIME_DIR=/run/user/1000"}}
	links := map[string]string{"/home/alice/tmp": "/tmp"}
	for _, tc := range []struct {
		dir    string
		expose []string
		home   string
		noXDG  bool
		want   string
	}{
		{dir: "/tmp", want: "the working directory is /tmp"},
		{dir: "/home/alice/tmp", want: "the working directory is /tmp"}, // a link to it
		{dir: "/dev/shm", want: "the working directory is /dev/shm"},
		{dir: "/run/user/1000", want: "$XDG_RUNTIME_DIR"},
		{dir: "/run/user", want: "$XDG_RUNTIME_DIR"},
		{dir: "/home/alice/src", expose: []string{"/tmp"}, want: "isolate.expose lists /tmp"},
		{dir: "/home/alice/src", expose: []string{"/run/user/1000"}, want: "isolate.expose lists /run/user/1000"},
		{dir: "/tmp/work"},
		{dir: "/home/alice/src", expose: []string{"/run/user/1000/docker.sock", "/tmp/build"}},
		{dir: "/"}, // a container's usual working directory: nothing is bound back
		{dir: "/home/alice"},
		{dir: "/tmp/tmux-1000", want: "tmux"},
		{dir: "/tmp/.X11-unix", want: "X11"},
		{dir: "/run/dbus", want: "D-Bus system bus"},
		{dir: "/run", want: "the working directory is /run"},
		{dir: "/run/user/1001", noXDG: true, want: "runtime directory"}, // $XDG_RUNTIME_DIR unset (su, cron)
		{dir: "/home/alice/src", home: "/run/user", want: "HOME is /run/user"},
	} {
		opts := base
		opts.Dir, opts.Expose = tc.dir, tc.expose
		if tc.noXDG {
			opts.Env = nil
		}
		if tc.home != "" {
			opts.Env = append(slices.Clone(opts.Env), "HOME="+tc.home)
		}
		_, err := plan(opts, fakeResolve(links))
		if tc.want == "" && err != nil {
			t.Errorf("dir %s, expose %v: %v", tc.dir, tc.expose, err)
		}
		if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("dir %s, expose %v: error %v, want one naming %q", tc.dir, tc.expose, err, tc.want)
		}
	}
}

func TestPlanFixedParts(t *testing.T) {
	got, err := plan(IsolateOptions{
		Args: []string{"sh"}, ListenPort: 4000,
		Probes: []string{"192.0.2.2:4000", "[fd00::2]:4000", "127.0.0.2:4000", "not an address"},
	}, fakeResolve(map[string]string{"/var/run": "/run"}))
	if err != nil {
		t.Fatal(err)
	}
	want := initSpec{
		Args:       []string{"sh"},
		ListenPort: 4000,
		Private:    []privateDir{{"/tmp", 0o1777}, {"/run", 0o755}, {"/dev/shm", 0o1777}},
		Timeout:    30 * time.Second,
		SelfTest: selfTestSpec{
			TCP:   []string{"198.51.100.7:443", "[2001:db8::7]:443", "169.254.169.254:80", "192.0.2.2:4000", "[fd00::2]:4000"},
			UDP:   []string{"198.51.100.7:53", "[2001:db8::7]:53", "192.0.2.2:53", "[fd00::2]:53"},
			Proxy: "127.0.0.1:4000",
		},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("plan() mismatch (-want +got):\n%s", diff)
	}
	for _, bad := range []IsolateOptions{{ListenPort: 4000}, {Args: []string{"sh"}}, {Args: []string{"sh"}, ListenPort: 70000}} {
		if _, err := plan(bad, fakeResolve(nil)); err == nil {
			t.Errorf("plan(%+v) accepted", bad)
		}
	}
}

func TestDBusPath(t *testing.T) {
	for give, want := range map[string]string{
		"unix:path=/run/user/1000/bus":                        "/run/user/1000/bus",
		"unix:path=/run/user/1000/bus,guid=abc":               "/run/user/1000/bus",
		"unix:abstract=/tmp/dbus-x,guid=1;unix:path=/run/bus": "/run/bus",
		"unix:abstract=/tmp/dbus-XYZ":                         "",
		"tcp:host=localhost,port=1234":                        "",
		"":                                                    "",
	} {
		if got := dbusPath(give); got != want {
			t.Errorf("dbusPath(%q) = %q, want %q", give, got, want)
		}
	}
}

func TestHoldsSecret(t *testing.T) {
	secrets := []string{"", "short", "xoxb-0123456789"}
	for give, want := range map[string]bool{
		"":                           false,
		"short":                      true,
		"not short at all":           false, // short secrets match only whole values
		"Bearer xoxb-0123456789":     true,
		"xoxb-012345678":             false,
		"https://example.com/?t=abc": false,
	} {
		if got := holdsSecret(give, secrets); got != want {
			t.Errorf("holdsSecret(%q) = %v, want %v", give, got, want)
		}
	}
}

func TestMachineProbes(t *testing.T) {
	var prefixes []netip.Prefix
	for _, s := range []string{"127.0.0.1/8", "192.0.2.2/24", "::1/128", "fd00::2/64", "fe80::1/64", "0.0.0.0/0", "ff02::1/128"} {
		prefixes = append(prefixes, netip.MustParsePrefix(s))
	}
	got := MachineProbes(prefixes, 8080)
	if diff := cmp.Diff([]string{"192.0.2.2:8080", "[fd00::2]:8080"}, got); diff != "" {
		t.Errorf("MachineProbes (-want +got):\n%s", diff)
	}
}

func TestOutermost(t *testing.T) {
	got := outermost([]string{"/tmp/a/b", "/tmp/a", "/tmp/ab", "/run/x", "/tmp/a", "/tmp/a/b/c"})
	if diff := cmp.Diff([]string{"/run/x", "/tmp/a", "/tmp/ab"}, got); diff != "" {
		t.Errorf("outermost (-want +got):\n%s", diff)
	}
}
