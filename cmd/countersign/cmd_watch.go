package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/spf13/cobra"

	"github.com/countersign/countersign/approval"
)

// approvalAPI is what the watch screen needs from the admin API clients.
type approvalAPI interface {
	List(ctx context.Context, pendingOnly bool) ([]*approval.Record, error)
	DecideScoped(ctx context.Context, id string, approve bool, approver, reason string, scope time.Duration) (*approval.Record, error)
}

func newWatchCmd(e *env, server *string) *cobra.Command {
	return &cobra.Command{
		Use:   "watch",
		Short: "A live list of pending approvals: approve or deny with a key",
		Long: `watch refreshes the pending approvals of every running countersign once a
second. Keys: ↑/↓ (or k/j) select, a approve, d deny, s approve and allow the
same operation for 30 minutes (a scoped grant), enter show details, q quit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			clients, err := approvalClients(cmd, e, *server)
			if err != nil {
				return err
			}
			apis := make([]approvalAPI, len(clients))
			for i, c := range clients {
				apis[i] = c
			}
			m := newWatchModel(cmd.Context(), apis, currentUser(), time.Now)
			p := tea.NewProgram(m, tea.WithInput(e.stdin), tea.WithOutput(e.stdout), tea.WithContext(cmd.Context()))
			_, err = p.Run()
			return err
		},
	}
}

type watchItem struct {
	rec *approval.Record
	api approvalAPI
}

// watchModel is the bubbletea model of `approvals watch`.
type watchModel struct {
	ctx      context.Context
	apis     []approvalAPI
	approver string
	now      func() time.Time

	items    []watchItem
	width    int // the terminal's columns; 0 before the first report
	cells    cells
	cursor   int
	detail   bool
	status   string
	err      error
	quitting bool
}

func newWatchModel(ctx context.Context, apis []approvalAPI, approver string, now func() time.Time) *watchModel {
	return &watchModel{ctx: ctx, apis: apis, approver: approver, now: now}
}

type refreshMsg struct {
	items []watchItem
	err   error
}

type tickMsg struct{}

type decidedMsg struct {
	rec *approval.Record
	err error
}

func (m *watchModel) Init() tea.Cmd { return m.refresh }

func (m *watchModel) refresh() tea.Msg {
	ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
	defer cancel()
	var items []watchItem
	for _, api := range m.apis {
		recs, err := api.List(ctx, true)
		if err != nil {
			return refreshMsg{err: err}
		}
		for _, r := range recs {
			items = append(items, watchItem{rec: r, api: api})
		}
	}
	slices.SortFunc(items, func(a, b watchItem) int { return a.rec.Created.Compare(b.rec.Created) })
	return refreshMsg{items: items}
}

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(time.Time) tea.Msg { return tickMsg{} })
}

func (m *watchModel) decide(approve bool, scope time.Duration) tea.Cmd {
	if m.cursor >= len(m.items) {
		return nil
	}
	it := m.items[m.cursor]
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
		defer cancel()
		reason := ""
		if !approve {
			reason = "denied from countersign approvals watch"
		}
		rec, err := it.api.DecideScoped(ctx, it.rec.ID, approve, m.approver, reason, scope)
		return decidedMsg{rec: rec, err: err}
	}
}

func (m *watchModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case refreshMsg:
		m.err = msg.err
		if msg.err == nil {
			m.items = msg.items
			if m.cursor >= len(m.items) {
				m.cursor = max(0, len(m.items)-1)
			}
		}
		return m, tick()
	case tickMsg:
		return m, m.refresh
	case tea.WindowSizeMsg:
		m.width = msg.Width
	case tea.ModeReportMsg:
		if v := msg.Value; msg.Mode == ansi.ModeUnicodeCore && (v == ansi.ModeReset || v == ansi.ModeSet || v == ansi.ModePermanentlySet) {
			// As the renderer switches to grapheme widths (bubbletea's
			// tea.go, ModeReportMsg).
			m.cells.graphemes = true
		}
	case decidedMsg:
		if msg.err != nil {
			m.status = "error: " + msg.err.Error()
		} else {
			m.status = fmt.Sprintf("%s: %s (%d of %d approvals)", msg.rec.ID, msg.rec.State, len(msg.rec.Approvers()), msg.rec.Required)
		}
		return m, m.refresh
	case tea.KeyPressMsg:
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			if m.detail && msg.String() == "esc" {
				m.detail = false
				return m, nil
			}
			m.quitting = true
			return m, tea.Quit
		case "up", "k":
			if m.cursor > 0 {
				m.cursor--
			}
		case "down", "j":
			if m.cursor < len(m.items)-1 {
				m.cursor++
			}
		case "enter":
			m.detail = !m.detail
		case "a":
			return m, m.decide(true, 0)
		case "s":
			return m, m.decide(true, 30*time.Minute)
		case "d":
			return m, m.decide(false, 0)
		}
	}
	return m, nil
}

func (m *watchModel) View() tea.View { return tea.NewView(m.screen()) }

// screen is the text of the view.
func (m *watchModel) screen() string {
	if m.quitting {
		return ""
	}
	// The renderer cuts lines at the terminal's width without a mark: what
	// an approver reads must not lose its end unseen, so the summary is
	// cut here, with "…", and the rest wraps, measured as the renderer
	// measures.
	width := m.width
	if width <= 0 {
		width = 80
	}
	c := m.cells
	var b strings.Builder
	b.WriteString(c.wrap("countersign — pending approvals", width))
	b.WriteString("\n")
	b.WriteString(c.wrap("a approve · s approve for 30m · d deny · enter details · q quit", width))
	b.WriteString("\n\n")
	if m.err != nil {
		b.WriteString(c.wrap("  cannot reach countersign: "+oneLine(m.err.Error(), 1000), width))
		b.WriteString("\n")
	}
	if len(m.items) == 0 {
		b.WriteString(c.wrap("  nothing is waiting for you", width))
		b.WriteString("\n")
	}
	for i, it := range m.items {
		cursor := "  "
		if i == m.cursor {
			cursor = "> "
		}
		r := it.rec
		left := r.Expires.Sub(m.now()).Round(time.Second)
		name := c.truncate(oneLine(r.SessionName, 100), 22)
		name += strings.Repeat(" ", max(22-c.width(name), 0))
		row := fmt.Sprintf("%s%-12s %s %d/%d  %-8s  ", cursor, r.ID, name, len(r.Approvers()), r.Required, left)
		summary := oneLine(r.Summary, 200)
		if rest := width - c.width(row); rest >= 10 {
			b.WriteString(row + c.truncate(summary, rest) + "\n")
		} else {
			// Too narrow for both: the summary wraps under the row.
			b.WriteString(c.truncate(strings.TrimRight(row, " "), width) + "\n")
			writeWrapped(&b, c, summary, width)
		}
		if i == m.cursor && m.detail {
			for _, msg := range r.Messages {
				writeWrapped(&b, c, "policy: "+oneLine(msg, 1000), width)
			}
			writeWrapped(&b, c, r.Request.Method+" "+oneLine(r.Request.URL, 2000), width)
			if r.Request.Body != "" {
				writeWrapped(&b, c, "body: "+oneLine(r.Request.Body, 1000), width)
			}
		}
	}
	if m.status != "" {
		b.WriteString("\n")
		b.WriteString(c.wrap("  "+oneLine(m.status, 1000), width))
		b.WriteString("\n")
	}
	return b.String()
}

// writeWrapped writes s indented under an approval's row, wrapped to width
// columns (without the indent on a very narrow terminal).
func writeWrapped(b *strings.Builder, c cells, s string, width int) {
	indent := "      "
	if width < 26 {
		indent = ""
	}
	for _, line := range strings.Split(c.wrap(s, max(width-len(indent), 1)), "\n") {
		b.WriteString(indent)
		b.WriteString(line)
		b.WriteString("\n")
	}
}

// cells measures text as bubbletea's renderer does: a cell per character
// width (wcwidth), unless the terminal has said that it lays out whole
// grapheme clusters (mode 2027). Either measure alone would cut some text
// (an emoji with a skin tone, a conjunct) past the edge, unseen.
type cells struct{ graphemes bool }

func (c cells) width(s string) int {
	if c.graphemes {
		return ansi.StringWidth(s)
	}
	return ansi.StringWidthWc(s)
}

// truncate cuts s to n columns, ending in "…" when it cut.
func (c cells) truncate(s string, n int) string {
	if c.graphemes {
		return ansi.Truncate(s, n, "…")
	}
	return ansi.TruncateWc(s, n, "…")
}

// wrap wraps s at spaces, and within words longer than n, to n columns.
func (c cells) wrap(s string, n int) string {
	if c.graphemes {
		return ansi.Wrap(s, n, "")
	}
	return ansi.WrapWc(s, n, "")
}
