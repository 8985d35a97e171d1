package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/countersign/countersign/action"
)

const (
	reloadTest = `package countersign

test_get_allowed if allow with input as {"request": {"method": "GET"}}

test_delete_denied if not allow with input as {"request": {"method": "DELETE"}}
`
	// reloadValid passes reloadTest; %d makes each generation a new revision.
	reloadValid = "package countersign\n\ngeneration := %d\n\nallow if input.request.method == \"GET\"\n"
	// reloadBadTest compiles but fails test_get_allowed.
	reloadBadTest = "package countersign\n\ngeneration := %d\n\nallow if input.request.method == \"POST\"\n"
	// reloadBroken does not compile.
	reloadBroken = "package countersign\n\ngeneration := %d\n\nallow if {\n"
)

// reloadEvents collects OnReload events.
type reloadEvents struct{ ch chan ReloadEvent }

func newReloadEvents() *reloadEvents { return &reloadEvents{ch: make(chan ReloadEvent, 1024)} }

func (r *reloadEvents) on(ev ReloadEvent) { r.ch <- ev }

// next waits (bounded) for the next event.
func (r *reloadEvents) next(t *testing.T) ReloadEvent {
	t.Helper()
	select {
	case ev := <-r.ch:
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no reload event within 30s")
		return ReloadEvent{}
	}
}

func (r *reloadEvents) none(t *testing.T) {
	t.Helper()
	select {
	case ev := <-r.ch:
		t.Fatalf("unexpected reload event %+v", ev)
	default:
	}
}

func TestReloadAcceptsOnlyWhatCompilesAndPassesItsTests(t *testing.T) {
	events := newReloadEvents()
	e, dir := newEngine(t, Options{OnReload: events.on}, map[string]string{
		"policy.rego":      fmt.Sprintf(reloadValid, 1),
		"policy_test.rego": reloadTest,
	})
	rev1 := e.Revision()

	// Unchanged files: no event, nothing counted.
	if err := e.Reload(t.Context()); err != nil {
		t.Fatalf("Reload(unchanged) = %v", err)
	}
	events.none(t)

	// A change whose tests fail is rejected, naming the test.
	writeFiles(t, dir, mod(fmt.Sprintf(reloadBadTest, 2)))
	err := e.Reload(t.Context())
	var tf *TestsFailedError
	if !errors.As(err, &tf) || !strings.Contains(err.Error(), "data.countersign.test_get_allowed (") {
		t.Fatalf("Reload(failing tests) = %v, want a TestsFailedError naming test_get_allowed", err)
	}
	ev := events.next(t)
	if ev.Err == nil || ev.Revision != rev1 || ev.Previous != rev1 || ev.Origin != OriginFiles || ev.Tests.Failed != 1 {
		t.Errorf("event after failing tests = %+v", ev)
	}
	if d := e.DecideDocument(t.Context(), doc("GET", "example.com", "/")); d.Verdict != VerdictAllow || d.Revision != rev1 {
		t.Errorf("after a rejected reload: %v under %s, want allow under %s", d.Verdict, d.Revision, rev1)
	}

	// A change that does not compile is rejected with the compiler's
	// file:line.
	writeFiles(t, dir, mod(fmt.Sprintf(reloadBroken, 3)))
	if err := e.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), "policy.rego:") {
		t.Fatalf("Reload(broken) = %v, want a parse error at policy.rego", err)
	}
	if ev := events.next(t); ev.Err == nil {
		t.Errorf("event after a broken policy = %+v, want rejected", ev)
	}
	st := e.Status()
	if st.Revision != rev1 || st.LastError == nil || st.Rejected != 2 || st.Reloads != 0 {
		t.Errorf("Status() after two rejections = %+v", st)
	}
	if _, herr := e.Health(); herr == nil {
		t.Error("Health() shows no error after a rejected reload")
	}

	// A good change is accepted and clears the error.
	writeFiles(t, dir, mod(fmt.Sprintf(reloadValid, 4)))
	if err := e.Reload(t.Context()); err != nil {
		t.Fatalf("Reload(valid) = %v", err)
	}
	ev = events.next(t)
	if ev.Err != nil || ev.Revision == rev1 || ev.Previous != rev1 || ev.Tests.Passed != 2 {
		t.Errorf("event after a valid change = %+v", ev)
	}
	st = e.Status()
	if st.Revision != ev.Revision || st.LastError != nil || st.Reloads != 1 || st.Rejected != 2 {
		t.Errorf("Status() after recovery = %+v", st)
	}

	// A broken test file alone is a rejection too: the set is tested as a
	// whole.
	writeFiles(t, dir, map[string]string{"policy_test.rego": "package countersign\n\ntest_x if {\n"})
	if err := e.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), "policy_test.rego:") {
		t.Errorf("Reload(broken test file) = %v, want an error at policy_test.rego", err)
	}
}

// TestReloadUnderLoad reloads 200 times through the file watcher,
// alternating valid policies with ones that do not compile or fail their
// tests, while goroutines decide requests without pause. Every decision must be an
// allow (the only outcome of the valid policies for a GET) made under one
// of the accepted revisions.
func TestReloadUnderLoad(t *testing.T) {
	events := newReloadEvents()
	e, dir := newEngine(t, Options{OnReload: events.on}, map[string]string{
		"policy.rego":      fmt.Sprintf(reloadValid, 0),
		"policy_test.rego": reloadTest,
	})
	w, err := NewWatcher(e, WatchOptions{Debounce: 5 * time.Millisecond}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	var mu sync.Mutex
	accepted := map[string]bool{e.Revision(): true}
	seen := map[string]int{}
	var decisions, bad atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[string]int{}
			defer func() {
				mu.Lock()
				for k, v := range local {
					seen[k] += v
				}
				mu.Unlock()
			}()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				d := e.DecideDocument(t.Context(), doc("GET", "example.com", fmt.Sprintf("/%d", i%7)))
				decisions.Add(1)
				if d.Verdict != VerdictAllow || d.Err != nil {
					bad.Add(1)
				}
				local[d.Revision]++
			}
		}()
	}

	staging := t.TempDir()
	const reloads = 200
	var rejected int
	for i := 1; i <= reloads; i++ {
		src := fmt.Sprintf(reloadValid, i)
		wantOK := i%2 == 1
		if !wantOK {
			src = fmt.Sprintf(reloadBroken, i)
			if i%4 == 0 {
				src = fmt.Sprintf(reloadBadTest, i)
			}
		}
		// Editors and deploy tools replace files by renaming; one rename is
		// one event, so every write is one reload.
		tmp := filepath.Join(staging, "policy.rego")
		if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "policy.rego")); err != nil {
			t.Fatal(err)
		}
		ev := events.next(t)
		if (ev.Err == nil) != wantOK {
			t.Fatalf("reload %d: accepted=%v (err %v), want accepted=%v", i, ev.Err == nil, ev.Err, wantOK)
		}
		if ev.Err == nil {
			mu.Lock()
			accepted[ev.Revision] = true
			mu.Unlock()
		} else {
			rejected++
			if ev.Revision != ev.Previous {
				t.Fatalf("reload %d rejected but the revision moved from %s to %s", i, ev.Previous, ev.Revision)
			}
		}
	}
	close(stop)
	wg.Wait()

	if len(accepted) != reloads/2+1 || rejected != reloads/2 {
		t.Errorf("%d revisions accepted and %d reloads rejected, want %d and %d", len(accepted), rejected, reloads/2+1, reloads/2)
	}
	if n := bad.Load(); n > 0 {
		t.Errorf("%d of %d decisions were not an error-free allow", n, decisions.Load())
	}
	var foreign []string
	for rev := range seen {
		if !accepted[rev] {
			foreign = append(foreign, rev)
		}
	}
	if len(foreign) > 0 {
		t.Errorf("decisions made under revisions that were never accepted: %v", foreign)
	}
	if len(seen) < 2 {
		t.Errorf("decisions saw %d revisions; the load did not overlap the reloads", len(seen))
	}
	t.Logf("%d decisions under %d revisions during %d reloads", decisions.Load(), len(seen), reloads)
	st := e.Status()
	if diff := cmp.Diff([]int64{reloads / 2, reloads / 2}, []int64{st.Reloads, st.Rejected}); diff != "" {
		t.Errorf("Status() reloads/rejected (-want +got):\n%s", diff)
	}
}

func TestReloadRejectionEventsNameTheirOrigin(t *testing.T) {
	events := newReloadEvents()
	e, _ := newEngine(t, Options{OnReload: events.on}, mod(fmt.Sprintf(reloadValid, 1)))
	e.rejectBundle(errors.New("signature does not verify"))
	ev := events.next(t)
	if ev.Origin != OriginBundle || ev.Err == nil || !slices.Contains([]string{e.Revision()}, ev.Revision) {
		t.Errorf("bundle rejection event = %+v", ev)
	}
}

// With PinPaths, a reload that finds another directory where a policy
// directory was (the old one moved away, a new one made in its place) is
// refused and the policy in force stays; without it, the new one loads.
func TestPinnedPolicyDirectories(t *testing.T) {
	const deny = "package countersign\n\ndeny contains \"no deletes\" if input.request.method == \"DELETE\"\n"
	const allow = "package countersign\n"
	for _, pin := range []bool{true, false} {
		for _, asFile := range []bool{false, true} {
			root := t.TempDir()
			dir := filepath.Join(root, "proj", "policies")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "policy.rego"), []byte(deny), 0o600); err != nil {
				t.Fatal(err)
			}
			path := dir
			if asFile {
				path = filepath.Join(dir, "policy.rego")
			}
			e, err := New(t.Context(), Options{Source: Source{Paths: []string{path}}, PinPaths: pin}, nil)
			if err != nil {
				t.Fatal(err)
			}
			// An editor's change in place reloads either way.
			if err := os.WriteFile(filepath.Join(dir, "policy.rego"), []byte(deny+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := e.Reload(t.Context()); err != nil {
				t.Fatalf("pin %v, file %v: a change in place: %v", pin, asFile, err)
			}
			// The agent moves the project and makes its own policies.
			if err := os.Rename(filepath.Join(root, "proj"), filepath.Join(root, "proj-old")); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "policy.rego"), []byte(allow), 0o600); err != nil {
				t.Fatal(err)
			}
			err = e.Reload(t.Context())
			d := e.Decide(t.Context(), NewInput(&action.Request{Method: "DELETE", Host: "h", Path: "/"}, action.Action{Provider: "http"}, nil, time.Unix(0, 0)))
			if pin && (err == nil || !strings.Contains(err.Error(), "moved or replaced") || d.Verdict != VerdictDeny) {
				t.Errorf("pinned, file %v: reload error %v, DELETE %s; want refused and still denied", asFile, err, d.Verdict)
			}
			if !pin && (err != nil || d.Verdict != VerdictAllow) {
				t.Errorf("not pinned, file %v: reload error %v, DELETE %s; want the new policy", asFile, err, d.Verdict)
			}
		}
	}
}

// A test file in a library package adds tests to the library; it does not
// replace it. The decision after a reload of the same files is the one
// before (found by review: the reload dropped countersign.lib.ops and the
// deny that used it became undefined, an allow).
func TestReloadKeepsTheLibraryATestFileExtends(t *testing.T) {
	e, dir := newEngine(t, Options{}, map[string]string{
		"policy.rego": `package countersign

import data.countersign.lib.ops

deny contains "destructive" if ops.is_destructive
`,
		"ops_extra_test.rego": "package countersign.lib.ops\n\ntest_mine if { 1 == 1 }\n",
	})
	del := action.Action{Provider: "aws", Service: "ec2", Operation: "TerminateInstances"}
	d := e.Decide(t.Context(), &Input{Request: Request{Method: "POST", Host: "ec2.us-east-1.amazonaws.com", Path: "/"}, Action: del})
	if d.Verdict != VerdictDeny {
		t.Fatalf("at start: %v (%v), want deny", d.Verdict, d.Err)
	}
	rev := e.Revision()
	writeFiles(t, dir, map[string]string{"policy.rego": `package countersign

import data.countersign.lib.ops

deny contains "destructive" if ops.is_destructive

# touched
`})
	if err := e.Reload(t.Context()); err != nil {
		t.Fatalf("Reload = %v", err)
	}
	if e.Revision() == rev {
		t.Fatal("the changed file was not loaded")
	}
	d = e.Decide(t.Context(), &Input{Request: Request{Method: "POST", Host: "ec2.us-east-1.amazonaws.com", Path: "/"}, Action: del})
	if d.Verdict != VerdictDeny {
		t.Errorf("after the reload: %v (%v), want deny", d.Verdict, d.Err)
	}
}
