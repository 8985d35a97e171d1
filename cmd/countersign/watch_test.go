package main

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/countersign/countersign/approval"
)

type fakeAPI struct {
	recs    []*approval.Record
	decided []string
}

func (f *fakeAPI) List(context.Context, bool) ([]*approval.Record, error) { return f.recs, nil }

func (f *fakeAPI) DecideScoped(_ context.Context, id string, approve bool, approver, reason string, scope time.Duration) (*approval.Record, error) {
	f.decided = append(f.decided, id+" "+map[bool]string{true: "approve", false: "deny"}[approve]+" by "+approver+" scope "+scope.String())
	return &approval.Record{ID: id, State: approval.StateApproved, Required: 1}, nil
}

func TestWatchModelApprovesTheSelectedApproval(t *testing.T) {
	now := time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)
	api := &fakeAPI{recs: []*approval.Record{
		{ID: "ap-1", SessionName: "alice/claude", Summary: "DELETE repo", Required: 1, Created: now, Expires: now.Add(time.Hour)},
		{ID: "ap-2", SessionName: "bob/aider", Summary: "<script>x</script>\x1b[2J", Required: 2, Created: now.Add(time.Second), Expires: now.Add(time.Hour)},
	}}
	m := newWatchModel(t.Context(), []approvalAPI{api}, "carol", func() time.Time { return now })
	var model tea.Model = m
	model, _ = model.Update(m.refresh())
	view := model.View().Content
	// The keys fit an 80-column terminal, where longer lines are cut.
	for _, line := range strings.SplitN(view, "\n", 3)[:2] {
		if n := utf8.RuneCountInString(line); n > 80 {
			t.Errorf("header line of %d columns: %q", n, line)
		}
	}
	if !strings.Contains(view, "ap-1") || !strings.Contains(view, "ap-2") || strings.Contains(view, "\x1b[2J") {
		t.Fatalf("view:\n%q", view)
	}
	model, _ = model.Update(tea.KeyPressMsg{Code: tea.KeyDown})
	model, cmd := model.Update(tea.KeyPressMsg{Code: 's', Text: "s"})
	if cmd == nil {
		t.Fatal("pressing s produced no command")
	}
	model, _ = model.Update(cmd())
	if len(api.decided) != 1 || api.decided[0] != "ap-2 approve by carol scope 30m0s" {
		t.Fatalf("decided = %v", api.decided)
	}
	if !strings.Contains(model.View().Content, "ap-2: approved") {
		t.Errorf("status not shown:\n%s", model.View().Content)
	}
	_, cmd = model.Update(tea.KeyPressMsg{Code: 'd', Text: "d"})
	cmd()
	if len(api.decided) != 2 || !strings.HasPrefix(api.decided[1], "ap-2 deny") {
		t.Fatalf("decided = %v", api.decided)
	}
}

// Nothing an approver reads is cut at the terminal's edge unseen: the
// summary ends in "…" and the details wrap, the URL's end included, at any
// width and measured as the renderer measures (per character, or per
// grapheme once the terminal says it lays those out).
func TestWatchViewFitsTheTerminal(t *testing.T) {
	now := time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)
	url := "https://api.example.com/v1/projects/" + strings.Repeat("a", 150) + "/delete-the-END"
	// An emoji with a skin tone and a conjunct measure differently per
	// character and per grapheme.
	body := strings.Repeat("👍🏽 क्षि 東京 ", 30)
	for _, graphemes := range []bool{false, true} {
		for _, width := range []int{12, 30, 60, 120} {
			api := &fakeAPI{recs: []*approval.Record{{
				ID: "ap-1", SessionName: "alice/東京東京東京東京東京東京", Summary: "DELETE " + url, Required: 1, Created: now, Expires: now.Add(time.Hour),
				Messages: []string{"deleting a project needs a human"},
				Request:  approval.Request{Method: "DELETE", URL: url, Body: body},
			}}}
			m := newWatchModel(t.Context(), []approvalAPI{api}, "carol", func() time.Time { return now })
			var model tea.Model = m
			model, _ = model.Update(m.refresh())
			model, _ = model.Update(tea.WindowSizeMsg{Width: width, Height: 40})
			measure := ansi.StringWidthWc
			if graphemes {
				model, _ = model.Update(tea.ModeReportMsg{Mode: ansi.ModeUnicodeCore, Value: ansi.ModeSet})
				measure = ansi.StringWidth
			}
			model, _ = model.Update(tea.KeyPressMsg{Code: tea.KeyEnter})
			view := model.View().Content
			var joined strings.Builder
			for _, line := range strings.Split(view, "\n") {
				if n := measure(line); n > width {
					t.Errorf("graphemes %v, width %d: a line of %d columns: %q", graphemes, width, n, line)
				}
				joined.WriteString(strings.TrimSpace(line))
			}
			if !strings.Contains(view, "…") {
				t.Errorf("graphemes %v, width %d: the cut summary has no mark:\n%s", graphemes, width, view)
			}
			if !strings.Contains(joined.String(), url) {
				t.Errorf("graphemes %v, width %d: the details do not show the whole URL:\n%s", graphemes, width, view)
			}
		}
	}
}
