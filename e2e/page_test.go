//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium; `.ci/run` installs it.
const chromiumPath = "/usr/bin/chromium"

// pendingLink reads the page link from the run terminal's line
// "countersign: approval ap-… pending: … — <link>".
var pendingLink = regexp.MustCompile(`countersign: approval (ap-[a-z0-9]+) pending: .* — (https?://\S+)`)

// newBrowser starts headless Chromium for one test. It never uses a proxy,
// whatever the environment says: the approval page is reached directly, as
// an approver's browser would.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser test needs Chromium at %s (Debian: apt-get install chromium): %v", chromiumPath, err)
	}
	var browserLog bytes.Buffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(&lockedWriter{w: &browserLog}),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium output:\n%s", browserLog.String())
		}
	})
	return ctx
}

func TestApprovalPageApproveInChromium(t *testing.T) {
	h := startHeldDelete(t, "E2E-PAGE", pendingLink)
	w, c, out, stderr, m := h.w, h.c, h.out, h.stderr, h.m
	id, link := m[1], m[2]
	rest := &lockedWriter{w: &bytes.Buffer{}}
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(rest, stderr)
		close(copied)
	}()

	bctx := newBrowser(t)
	dir := t.ArtifactDir()
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Errorf("screenshot %s: %v", name, err)
			return
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Errorf("save screenshot: %v", err)
			return
		}
		t.Logf("screenshot: %s (kept when go test runs with -artifacts)", path)
	}

	// A phone-sized window: the page must be usable there.
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(412, 915, chromedp.EmulateMobile, chromedp.EmulateScale(2))); err != nil {
		t.Fatalf("emulate a phone: %v", err)
	}
	resp, err := chromedp.Run(bctx, chromedp.NavigateResponse(link))
	if err != nil {
		t.Fatalf("open %s in Chromium: %v", link, err)
	}
	if resp.Status != 200 {
		t.Fatalf("the approval page answered %d, want 200", resp.Status)
	}
	for name, want := range map[string]string{
		"Referrer-Policy": "no-referrer",
		"Cache-Control":   "no-store",
		"X-Frame-Options": "DENY",
	} {
		if got := cdpHeader(resp.Headers, name); got != want {
			t.Errorf("the page's %s = %q, want %q", name, got, want)
		}
	}
	if csp := cdpHeader(resp.Headers, "Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "form-action 'self'") {
		t.Errorf("the page's Content-Security-Policy = %q", csp)
	}
	title, err := chromedp.Run(bctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("Approval %s (pending) · countersign", id); title != want {
		t.Errorf("title = %q, want %q", title, want)
	}
	text, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	for _, want := range []string{
		"wants to",
		"DELETE",
		"https://api.github.com/repos/acme/shop",
		"deleting a repository needs a human",
		"E2E-PAGE",
		"Time left to decide",
		"Approve",
		"Deny",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not show %q:\n%s", want, text)
		}
	}
	// The style sheet applied under the page's CSP: the Approve button is
	// green, not a browser-default grey.
	style, err := chromedp.Run(bctx, chromedp.ComputedStyle(chromedp.CSS("button.approve")))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range style {
		if p.Name == "background-color" && p.Value != "rgb(26, 127, 55)" {
			t.Errorf("Approve button background = %s: the page's style sheet did not apply", p.Value)
		}
	}
	// Agent-controlled text cannot reorder what the approver reads. A value
	// in a sentence (a code span, or plain text with right-to-left letters)
	// is a run of its own: "on א, 5" would otherwise read "on 5 ,א". Values
	// and the exact request (URL, header values, body) are shown in the
	// order they were sent: ["א", "ב"] would otherwise read ["ב", "א"].
	// The probes are laid out with the page's own style sheet, then
	// removed.
	order, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(() => {
		const main = document.querySelector('main');
		const rect = (node, i) => {
			const r = document.createRange();
			r.setStart(node, i);
			r.setEnd(node, i + 1);
			return r.getBoundingClientRect();
		};
		const out = [];
		for (const inner of ['code', 'bdi']) {
			const p = document.createElement('p');
			p.className = 'action';
			p.append('on ');
			const v = document.createElement(inner);
			const letters = document.createTextNode('\u05d0\u05d1');
			v.append(letters);
			p.append(v);
			const t = document.createTextNode(', 5');
			p.append(t);
			main.append(p);
			out.push(inner + ':' + (rect(t, 2).left >= v.getBoundingClientRect().right - 0.5 ? 'after' : 'before') +
				',' + (rect(letters, 0).left < rect(letters, 1).left ? 'sent' : 'reordered'));
			p.remove();
		}
		{
			// The session name: isolated, in the order of its own script.
			const p = document.createElement('p');
			p.className = 'who';
			p.append('Agent session ');
			const v = document.createElement('strong');
			v.textContent = '\u05d0';
			p.append(v);
			const t = document.createTextNode(' 5');
			p.append(t);
			main.append(p);
			out.push('session:' + (rect(t, 1).left >= v.getBoundingClientRect().right - 0.5 ? 'after' : 'before'));
			p.remove();
		}
		const exact = {
			url: '<p class="reqline"><code class="url">X</code></p>',
			header: '<table class="headers"><tr><th>h</th><td>X</td></tr></table>',
			body: '<pre class="body">X</pre>',
		};
		for (const [name, html] of Object.entries(exact)) {
			const box = document.createElement('div');
			box.innerHTML = html.replace('X', '');
			const holder = box.querySelector('code, td, pre');
			const t = document.createTextNode('\u05d0\u05d1');
			holder.append(t);
			main.append(box);
			out.push(name + ':' + (rect(t, 0).left < rect(t, 1).left ? 'sent' : 'reordered'));
			box.remove();
		}
		return out.join(' ');
	})()`))
	if err != nil {
		t.Fatalf("lay out right-to-left values: %v", err)
	}
	if want := "code:after,sent bdi:after,sent session:after url:sent header:sent body:sent"; order != want {
		t.Errorf("right-to-left text on the page: %s, want %s", order, want)
	}
	shot("approval-page.png")
	if n := w.up.Count("", ""); n != 0 {
		t.Fatalf("upstream saw %d requests after opening the page; a GET must change nothing", n)
	}

	resp, err = chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS("button.approve")))
	if err != nil {
		t.Fatalf("click Approve: %v", err)
	}
	if resp.Status != 200 {
		t.Errorf("the decision answered %d, want 200", resp.Status)
	}
	text, err = chromedp.Run(bctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatalf("read the outcome page: %v", err)
	}
	if !strings.Contains(text, "Approved") || !strings.Contains(text, "countersign sends the held request now") {
		t.Errorf("the outcome page does not say approved:\n%s", text)
	}
	shot("approval-approved.png")

	<-copied // stderr ends when countersign exits (or the deadline kills it)
	if err := c.Wait(); err != nil {
		t.Fatalf("countersign run: %v\n%s", err, rest)
	}
	if got := strings.TrimSpace(out.String()); got != "204" {
		t.Errorf("curl got HTTP %s, want the upstream's 204", got)
	}
	if n := w.up.Count("DELETE", "/repos/acme/shop"); n != 1 {
		t.Errorf("upstream saw %d DELETEs, want exactly 1", n)
	}
	if log := w.auditLog(); !strings.Contains(log, `"via":"page"`) {
		t.Errorf("the audit log does not record the approval via the page:\n%s", log)
	}

}

// cdpHeader returns a response header as the browser reported it (names are
// case-insensitive there too).
func cdpHeader(h map[string]any, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			s, _ := v.(string)
			return s
		}
	}
	return ""
}

// lockedWriter is a buffer that a browser or a copying goroutine writes while
// the test reads it.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *lockedWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *lockedWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
