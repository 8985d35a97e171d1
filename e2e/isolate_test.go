//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/testinfra"
)

// Under `run --isolate` the agent's only way out is the proxy: these tests
// try the other ways with real tools and count what arrives.

// startDecoy puts a decoy on ip, any port.
func startDecoy(t *testing.T, network string, ip netip.Addr) *testinfra.Decoy {
	t.Helper()
	return testinfra.StartDecoy(t, network, netip.AddrPortFrom(ip, 0).String())
}

// machineIPs returns the machine's non-loopback, non-link-local addresses:
// at least one IPv4 address, and IPv6 ones when it has any.
func machineIPs(t *testing.T) (v4, v6 []netip.Addr) {
	t.Helper()
	for _, ip := range testinfra.MachineAddrs(t) {
		if ip.Is4() {
			v4 = append(v4, ip)
		} else {
			v6 = append(v6, ip)
		}
	}
	if len(v4) == 0 {
		t.Fatal("this machine has no non-loopback IPv4 address to put a decoy on")
	}
	return v4, v6
}

func (w *world) isolated(args ...string) result {
	w.t.Helper()
	return w.run(append([]string{"run", "--isolate", "--"}, args...)...)
}

var sessionLine = regexp.MustCompile(`countersign: session (s-[a-z0-9]+) `)

// allowedHosts returns the hosts of the allow decisions the audit log holds
// for the session named in a run's summary.
func (w *world) allowedHosts(r result) []string {
	w.t.Helper()
	m := sessionLine.FindStringSubmatch(r.stderr)
	if m == nil {
		w.t.Fatalf("no session summary in:\n%s", r.stderr)
	}
	var hosts []string
	sc := bufio.NewScanner(strings.NewReader(w.auditLog()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev struct {
			Event    string `json:"event"`
			Decision string `json:"decision"`
			Session  struct {
				ID string `json:"id"`
			} `json:"session"`
			Request struct {
				Host string `json:"host"`
			} `json:"request"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event == "decision" && ev.Decision == "allow" && ev.Session.ID == m[1] {
			hosts = append(hosts, ev.Request.Host)
		}
	}
	return hosts
}

func TestIsolateDirectHTTPSToTheUpstreamFails(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	url := "https://" + w.up.Addr + "/repos/acme/shop"

	// Without isolation the same command walks around the proxy: the
	// test would see a leak.
	plain := w.run("run", "--", "curl", "--noproxy", "*", "-sSk", url)
	if plain.code != 0 || w.up.Count("GET", "/repos/acme/shop") != 1 {
		t.Fatalf("control: plain run did not reach the upstream directly (code %d)\n%s%s", plain.code, plain.stdout, plain.stderr)
	}

	r := w.isolated("curl", "--noproxy", "*", "-sSk", "--max-time", "10", url)
	if r.code == 0 {
		t.Errorf("curl --noproxy '*' succeeded under --isolate:\n%s", r.stdout)
	}
	if n := w.up.Count("GET", "/repos/acme/shop"); n != 1 {
		t.Errorf("the upstream saw %d GETs, want only the control's 1", n)
	}
}

func TestIsolateDirectConnectionsReachNoDecoy(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	v4, v6 := machineIPs(t)
	var decoys []*testinfra.Decoy
	decoys = append(decoys, startDecoy(t, "tcp", netip.MustParseAddr("127.0.0.2")))
	for _, ip := range append(v4, v6...) {
		decoys = append(decoys, startDecoy(t, "tcp", ip))
	}

	// The decoys answer a direct connection from outside.
	control := w.run("run", "--", "curl", "--noproxy", "*", "-sS", "http://"+decoys[0].Addr+"/")
	if control.stdout != "decoy" || decoys[0].Hits.Load() != 1 {
		t.Fatalf("control: the decoy on %s did not answer a plain run: %q %s", decoys[0].Addr, control.stdout, control.stderr)
	}
	decoys[0].Hits.Store(0)

	var script strings.Builder
	for _, d := range decoys {
		// curl ignoring the proxy, and a raw socket from Python.
		fmt.Fprintf(&script, "curl --noproxy '*' -sS --max-time 5 http://%s/ && echo LEAK curl %s\n", d.Addr, d.Addr)
		host, port, _ := net.SplitHostPort(d.Addr)
		fmt.Fprintf(&script, "python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)' %s %s 2>/dev/null && echo LEAK python %s\n", host, port, d.Addr)
	}
	script.WriteString("echo done\n")
	r := w.isolated("sh", "-c", script.String())
	if r.code != 0 || !strings.Contains(r.stdout, "done") {
		t.Fatalf("isolated script: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "LEAK") {
		t.Errorf("a direct connection succeeded:\n%s", r.stdout)
	}
	for _, d := range decoys {
		if n := d.Hits.Load(); n != 0 {
			t.Errorf("decoy %s accepted %d connections, want 0", d.Addr, n)
		}
	}
}

func TestIsolateUDPAndDNSFail(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	v4, v6 := machineIPs(t)
	var decoys []*testinfra.Decoy
	for _, ip := range append(v4, v6...) {
		decoys = append(decoys, startDecoy(t, "udp", ip))
	}
	// Port 53 of the resolvers in /etc/resolv.conf, of a public resolver and
	// of this machine, and the UDP decoys: every send must fail.
	targets := []string{"8.8.8.8:53", "[2001:4860:4860::8888]:53", net.JoinHostPort(v4[0].String(), "53")}
	if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "nameserver" {
				if ip, err := netip.ParseAddr(f[1]); err == nil && !ip.IsLoopback() {
					targets = append(targets, netip.AddrPortFrom(ip, 53).String())
				}
			}
		}
	}
	for _, d := range decoys {
		targets = append(targets, d.Addr)
	}
	const script = `
import socket, sys
bad = []
for t in sys.argv[1:]:
    host, port = t.rsplit(":", 1)
    host = host.strip("[]")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01", (host, int(port)))
        bad.append("sent to " + t)
    except OSError as e:
        print("refused", t, e.strerror)
try:
    socket.getaddrinfo("example.com", 443)
    bad.append("example.com resolved")
except OSError as e:
    print("no resolver:", e)
if bad:
    print("LEAK", bad)
    sys.exit(1)
`
	r := w.isolated(append([]string{"python3", "-c", script}, targets...)...)
	if r.code != 0 {
		t.Fatalf("UDP or DNS got out: code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := strings.Count(r.stdout, "refused"); n != len(targets) {
		t.Errorf("%d of %d sends refused:\n%s", n, len(targets), r.stdout)
	}
	for _, d := range decoys {
		if n := d.Hits.Load(); n != 0 {
			t.Errorf("UDP decoy %s received %d datagrams, want 0", d.Addr, n)
		}
	}
}

func TestIsolateIPv6Fails(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	_, v6 := machineIPs(t)
	targets := []string{"https://[2001:db8::1]/", "http://[2606:4700:4700::1111]/"}
	var decoys []*testinfra.Decoy
	for _, ip := range append(v6, netip.IPv6Loopback()) {
		d := startDecoy(t, "tcp", ip)
		decoys = append(decoys, d)
		targets = append(targets, "http://"+d.Addr+"/")
	}
	var script strings.Builder
	for _, u := range targets {
		fmt.Fprintf(&script, "curl -6 --noproxy '*' -sS --max-time 5 %s && echo LEAK %s\n", u, u)
	}
	script.WriteString("true\n")
	r := w.isolated("sh", "-c", script.String())
	if strings.Contains(r.stdout, "LEAK") {
		t.Errorf("curl -6 got out:\n%s", r.stdout)
	}
	for _, d := range decoys {
		if n := d.Hits.Load(); n != 0 {
			t.Errorf("IPv6 decoy %s accepted %d connections, want 0", d.Addr, n)
		}
	}
	if r.code != 0 {
		t.Errorf("script: code %d\n%s", r.code, r.stderr)
	}
}

func TestIsolateHidesStateDirButNotTheCACertificate(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	// A first session creates the CA key, the admin token and the log.
	if r := w.run("run", "--", "true"); r.code != 0 {
		t.Fatalf("plain run: %s", r.stderr)
	}
	key, err := os.ReadFile(filepath.Join(w.stateDir, "ca-key.pem"))
	if err != nil || !strings.Contains(string(key), "PRIVATE KEY") {
		t.Fatalf("no CA key in state_dir: %v", err)
	}
	token, err := os.ReadFile(filepath.Join(w.stateDir, "admin-token"))
	if err != nil || len(strings.TrimSpace(string(token))) < 16 {
		t.Fatalf("no admin token in state_dir: %v", err)
	}
	script := fmt.Sprintf(`
for f in %[1]s/ca-key.pem %[1]s/admin-token %[1]s/audit.jsonl %[1]s/ca.pem; do
  if cat "$f" 2>/dev/null | grep -q .; then echo "READ $f"; else echo "hidden $f"; fi
done
echo "state_dir entries: $(ls -A %[1]s | wc -l)"
grep -c 'BEGIN CERTIFICATE' "$SSL_CERT_FILE"
grep -c 'BEGIN CERTIFICATE' "$NODE_EXTRA_CA_CERTS"
`, w.stateDir)
	r := w.isolated("sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "READ ") || !strings.Contains(r.stdout, "state_dir entries: 0") {
		t.Errorf("state_dir is visible inside:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "PRIVATE KEY") || strings.Contains(r.stdout, strings.TrimSpace(string(token))) {
		t.Errorf("a secret reached the agent's output:\n%s", r.stdout)
	}
	lines := strings.Fields(r.stdout)
	if len(lines) < 2 || lines[len(lines)-2] == "0" || lines[len(lines)-1] != "1" {
		t.Errorf("the CA bundle (system roots + countersign CA) and the CA certificate are not readable:\n%s", r.stdout)
	}
	// Outside, nothing changed.
	if after, _ := os.ReadFile(filepath.Join(w.stateDir, "ca-key.pem")); string(after) != string(key) {
		t.Error("the CA key changed")
	}
}

// The proxy reloads policies while the agent runs: under --isolate the
// agent cannot rewrite them, nor the configuration a later session reads,
// while its working directory stays its own.
func TestIsolatePolicyAndConfigAreReadOnly(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	policyFile := filepath.Join(w.dir, "policies", "policy.rego")
	before := map[string][]byte{}
	for _, f := range []string{policyFile, w.config, filepath.Join(w.dir, "upstream-ca.pem")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		before[f] = b
	}
	script := fmt.Sprintf(`
try() { if sh -c "$2" 2>/dev/null; then echo "CHANGED $1"; else echo "refused $1"; fi; }
try policy "printf 'package countersign\n' > %[1]s"
try new-policy "printf 'package countersign\nallow := true\n' > %[2]s/planted.rego"
try remove-policy "rm -f %[1]s"
try config "echo 'isolate: {expose: [%[3]s]}' >> %[4]s"
try ca-file "echo x >> %[5]s/upstream-ca.pem"
echo work > notes.txt && echo "wrote notes"
curl -sS -o /dev/null -w 'delete=%%{http_code}\n' -X DELETE https://api.github.com/repos/acme/shop
`, policyFile, filepath.Dir(policyFile), w.stateDir, w.config, w.dir)
	r := w.isolated("sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, what := range []string{"policy", "new-policy", "remove-policy", "config", "ca-file"} {
		if !strings.Contains(r.stdout, "refused "+what+"\n") {
			t.Errorf("the agent could change %s:\n%s", what, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "wrote notes") {
		t.Errorf("the agent could not write its working directory:\n%s%s", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "delete=403") || w.up.Count("DELETE", "/repos/acme/shop") != 0 {
		t.Errorf("the DELETE was not denied by the policy as written:\n%s", r.stdout)
	}
	for f, b := range before {
		if after, err := os.ReadFile(f); err != nil || string(after) != string(b) {
			t.Errorf("%s changed outside: %q (%v)", f, after, err)
		}
	}
	if _, err := os.Stat(filepath.Join(w.dir, "policies", "planted.rego")); err == nil {
		t.Error("a planted policy file exists outside")
	}
}

func TestIsolateApprovalListenerIsUnreachable(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	// The agent is handed the approval listener's URL on stdin (it cannot
	// read state_dir/run itself) and tries it directly and through the
	// proxy.
	c := w.cmd(ctx, "run", "--isolate", "--", "sh", "-c", `read url
curl --noproxy '*' -sS --max-time 5 "$url/healthz" && echo LEAK direct
curl -sS --max-time 10 "$url/api/v1/approvals"`)
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	var approvalURL string
	for i := 0; i < 500 && approvalURL == ""; i++ {
		files, _ := filepath.Glob(filepath.Join(w.stateDir, "run", "*.json"))
		for _, f := range files {
			var d struct {
				URL string `json:"url"`
			}
			if b, err := os.ReadFile(f); err == nil && json.Unmarshal(b, &d) == nil {
				approvalURL = d.URL
			}
		}
		if approvalURL == "" {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if approvalURL == "" {
		t.Fatalf("no discovery file in %s/run", w.stateDir)
	}
	// Reachable from outside: the listener is up.
	resp, err := http.Get(approvalURL + "/healthz")
	if err != nil {
		t.Fatalf("the approval listener does not answer from outside: %v", err)
	}
	resp.Body.Close()
	fmt.Fprintln(stdin, approvalURL)
	stdin.Close()
	if err := c.Wait(); err != nil {
		t.Logf("run: %v", err)
	}
	if strings.Contains(out.String(), "LEAK") || strings.Contains(out.String(), `"status"`) {
		t.Errorf("the agent reached the approval listener:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "countersign:") || !strings.Contains(out.String(), "own listener") {
		t.Errorf("through the proxy, the approval listener was not refused as countersign's own:\n%s\n%s", out.String(), errb.String())
	}
}

func TestIsolateClientsThroughTheProxyWorkAndAreAudited(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	// The script goes into the session's working directory: under
	// --isolate /tmp is private, and a checkout under /tmp would be hidden
	// (the working directory is bound back in).
	src, err := os.ReadFile(filepath.Join("testdata", "nodeclient.js"))
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(w.dir, "nodeclient.js")
	mustWrite(t, script, string(src))
	clone := filepath.Join(w.dir, "clone")
	tests := []struct {
		name string
		args []string
		want string // in stdout
		host string // audited as allowed
	}{
		{"curl", []string{"curl", "-sS", "https://api.github.com/repos/acme/shop"}, `"full_name":"acme/shop"`, "api.github.com"},
		{"git", []string{"sh", "-c", "git clone -q https://git.example.test/repo.git " + clone + " && echo cloned"}, "cloned", "git.example.test"},
		{"node", []string{"node", script}, "acme/shop", "api.github.com"},
		{"python3", []string{"python3", "-c", "import urllib.request; print(urllib.request.urlopen('https://api.github.com/repos/acme/shop').read().decode())"}, "acme/shop", "api.github.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.isolated(tt.args...)
			if r.code != 0 || !strings.Contains(r.stdout, tt.want) {
				t.Fatalf("%s through the proxy under --isolate: code %d\nstdout %s\nstderr %s", tt.name, r.code, r.stdout, r.stderr)
			}
			hosts := w.allowedHosts(r)
			if len(hosts) == 0 || hosts[0] != tt.host {
				t.Errorf("audited allow decisions for the session: %v, want %s", hosts, tt.host)
			}
		})
	}
	if n := w.up.Count("GET", "/repos/acme/shop"); n != 3 {
		t.Errorf("the upstream saw %d GETs of /repos/acme/shop, want 3 (curl, node, python3)", n)
	}

	// Node's fetch ignores the proxy variables before Node 24: directly, it
	// gets nowhere.
	before := w.up.Count("", "")
	direct := w.isolated("node", "-e", fmt.Sprintf(`fetch("https://%s/repos/acme/shop").then(() => { console.log("LEAK"); }, (e) => { console.log("failed", e.cause && e.cause.code); process.exit(3); })`, w.up.Addr))
	if direct.code != 3 || strings.Contains(direct.stdout, "LEAK") {
		t.Errorf("node fetch straight to the upstream: code %d\n%s%s", direct.code, direct.stdout, direct.stderr)
	}
	if n := w.up.Count("", ""); n != before {
		t.Errorf("the upstream saw %d more requests", n-before)
	}
}

func TestIsolateMetadataAddressDeniedThroughTheProxy(t *testing.T) {
	// The config allows 127.0.0.0/8 only; the policy would allow the GET.
	w := newWorld(t, denyDeletes, "")
	r := w.isolated("curl", "-sS", "--max-time", "10", "http://169.254.169.254/latest/meta-data/iam/security-credentials/")
	if !strings.Contains(r.stdout, "countersign:") || !strings.Contains(r.stdout, "169.254.169.254") {
		t.Fatalf("the metadata request was not refused by countersign:\n%s%s", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "upstream.allow_addresses") {
		t.Errorf("the refusal does not come from the address guard:\n%s", r.stdout)
	}
	// The policy allowed it; the address guard refused to dial.
	log := w.auditLog()
	if !strings.Contains(log, `"detail":"not forwarded: refused: 169.254.169.254 resolves to 169.254.169.254, which is cloud metadata`) {
		t.Errorf("no audited refusal to dial the metadata address:\n%s", log)
	}
}

func TestIsolateRefusesToStartWhenTheSelfTestFails(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	if r := w.run("ca", "init"); r.code != 0 {
		t.Fatalf("ca init: %s", r.stderr)
	}
	// "Attach" to a server that is not a countersign proxy: the forwarder
	// reaches it, the self-test notices and the agent never runs.
	other := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		io.WriteString(rw, "not countersign")
	}))
	defer other.Close()
	marker := filepath.Join(w.dir, "agent-ran")
	r := w.run("run", "--isolate", "--proxy", other.URL, "--", "touch", marker)
	if r.code != 2 || !strings.Contains(r.stderr, "self-test failed") || !strings.Contains(r.stderr, "not a countersign proxy") {
		t.Errorf("code %d, stderr:\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the agent ran although the self-test failed")
	}
}

// TestIsolateAgentCannotTypeIntoTheTerminal: TIOCSTI (and TIOCLINUX) would
// let the agent push a command into the user's terminal, which the shell
// runs outside isolation. The child's standard input here is not a
// terminal, so the kernel answers ENOTTY; the seccomp filter answers EPERM
// before the kernel looks.
func TestIsolateAgentCannotTypeIntoTheTerminal(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	const probe = `import errno, fcntl, termios
for name, cmd in (("TIOCSTI", termios.TIOCSTI), ("TIOCLINUX", 0x541C)):
    try:
        fcntl.ioctl(0, cmd, b"x")
        print(name, "ok")
    except OSError as e:
        print(name, errno.errorcode[e.errno])
`
	plain := w.run("run", "--", "python3", "-c", probe)
	if !strings.Contains(plain.stdout, "TIOCSTI ENOTTY") {
		t.Fatalf("control: without --isolate TIOCSTI gave %q (exit %d, %s); the test cannot tell the filter apart", plain.stdout, plain.code, plain.stderr)
	}
	r := w.isolated("python3", "-c", probe)
	if !strings.Contains(r.stdout, "TIOCSTI EPERM") || !strings.Contains(r.stdout, "TIOCLINUX EPERM") {
		t.Errorf("under --isolate: %q (exit %d, %s); want EPERM for both", r.stdout, r.code, r.stderr)
	}
}

// The user's other terminals are out of the agent's reach: what is typed
// in one could be read, and a fake prompt written into it. Terminals the
// agent opens come from a /dev/pts of its own.
func TestIsolateOtherTerminalsAreOutOfReach(t *testing.T) {
	w := newWorld(t, denyDeletes, "")
	_, slave := openPTY(t)
	other := slave.Name()

	script := fmt.Sprintf(`
echo "pts: $(ls -A /dev/pts | tr '\n' ' ')"
if echo 'password: ' 2>/dev/null > %[1]s; then echo "WROTE %[1]s"; fi
if timeout 1 cat %[1]s 2>/dev/null; then echo "READ %[1]s"; fi
script -qec tty /dev/null
`, other)
	r := w.isolated("sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "pts: ptmx \n") {
		t.Errorf("/dev/pts inside lists more than its ptmx:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "WROTE") || strings.Contains(r.stdout, "READ") {
		t.Errorf("the agent reached another terminal:\n%s", r.stdout)
	}
	if !regexp.MustCompile(`(?m)^/dev/pts/\d+\r?$`).MatchString(r.stdout) {
		t.Errorf("script could not open a terminal of the session's own:\n%s%s", r.stdout, r.stderr)
	}
}
