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
	// cut here, with "…", and the rest wraps.
	width := m.width
	if width <= 0 {
		width = 80
	}
	var b strings.Builder
	b.WriteString("countersign — pending approvals\n")
	b.WriteString(ansi.Wrap("a approve · s approve for 30m · d deny · enter details · q quit", width, ""))
	b.WriteString("\n\n")
	if m.err != nil {
		b.WriteString(ansi.Wrap(fmt.Sprintf("  cannot reach countersign: %v", m.err), width, ""))
		b.WriteString("\n")
	}
	if len(m.items) == 0 {
		b.WriteString("  nothing is waiting for you\n")
	}
	for i, it := range m.items {
		cursor := "  "
		if i == m.cursor {
			cursor = "> "
		}
		r := it.rec
		left := r.Expires.Sub(m.now()).Round(time.Second)
		row := fmt.Sprintf("%s%-12s %-22s %d/%d  %-8s  ", cursor, r.ID, oneLine(r.SessionName, 22),
			len(r.Approvers()), r.Required, left)
		b.WriteString(row)
		b.WriteString(ansi.Truncate(oneLine(r.Summary, 200), max(width-ansi.StringWidth(row), 1), "…"))
		b.WriteString("\n")
		if i == m.cursor && m.detail {
			for _, msg := range r.Messages {
				writeWrapped(&b, "policy: "+oneLine(msg, 1000), width)
			}
			writeWrapped(&b, r.Request.Method+" "+oneLine(r.Request.URL, 2000), width)
			if r.Request.Body != "" {
				writeWrapped(&b, "body: "+oneLine(r.Request.Body, 1000), width)
			}
		}
	}
	if m.status != "" {
		b.WriteString("\n")
		b.WriteString(ansi.Wrap("  "+oneLine(m.status, 1000), width, ""))
		b.WriteString("\n")
	}
	return b.String()
}

// writeWrapped writes s indented under an approval's row, wrapped to width
// columns.
func writeWrapped(b *strings.Builder, s string, width int) {
	const indent = "      "
	for _, line := range strings.Split(ansi.Hardwrap(s, max(width-len(indent), 20), true), "\n") {
		b.WriteString(indent)
		b.WriteString(line)
		b.WriteString("\n")
	}
}
