package approval

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"golang.org/x/text/unicode/bidi"

	"github.com/countersign/countersign/internal/redact"
)

// PageOptions configures the approval page.
type PageOptions struct {
	// Decide allows deciding from the page. It is false when approval.approvers
	// names Slack approvers: the page cannot verify a Slack identity, so it
	// then only shows the request.
	Decide bool
	// SlackButtons says that approvers also decide with Slack's buttons,
	// where countersign knows who presses them. The link posted beside the
	// buttons then cannot approve a request that needs two approvers: one
	// person could press Approve and follow the link, and count twice.
	SlackButtons bool
	// Secret keys the CSRF tokens (32 random bytes, kept in memory or in
	// state_dir). When empty, NewPageHandler makes a random one, so forms
	// rendered before a restart stop working after it.
	Secret []byte
	Now    func() time.Time
}

// Limits of the decision form.
const (
	pageFormLimit = 16 << 10
	pageReasonMax = 1000 // characters
)

// scopeChoices are the scoped grants the page offers, in the order shown.
var scopeChoices = []scopeChoice{
	{"15m", "15 minutes", 15 * time.Minute},
	{"1h", "1 hour", time.Hour},
	{"8h", "8 hours", 8 * time.Hour},
}

//go:embed templates
var pageFiles embed.FS

var (
	pageTemplate = template.Must(template.ParseFS(pageFiles, "templates/*.html"))
	pageCSS      = mustRead("templates/page.css")
	// pageCSP allows exactly the page's one inline style sheet (by hash), no
	// script at all, and form posts only back to this origin.
	pageCSP = "default-src 'none'; style-src '" + cspHash(pageCSS) + "'; img-src 'self' data:; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

func mustRead(name string) string {
	b, err := pageFiles.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// NewPageHandler serves GET and POST /approvals/{id}?t=TOKEN.
//
// GET (and HEAD) shows the approval to whoever holds a page token and changes
// nothing: chat clients fetch links to unfurl them. POST decides, once per
// token, and needs the CSRF token embedded in the page's form. A wrong token
// and an unknown approval id get the same 404 page, so ids cannot be probed.
func NewPageHandler(b *Broker, opts PageOptions, logger *zap.Logger) http.Handler {
	if logger == nil {
		logger = zap.NewNop()
	}
	if len(opts.Secret) == 0 {
		opts.Secret = make([]byte, 32)
		_, _ = rand.Read(opts.Secret)
	}
	if opts.Now == nil {
		opts.Now = b.opts.Now
	}
	return &page{b: b, opts: opts, logger: logger.Named("page")}
}

type page struct {
	b      *Broker
	opts   PageOptions
	logger *zap.Logger
}

func (p *page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Robots-Tag", "noindex, nofollow")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")

	id := r.PathValue("id")
	if id == "" {
		id = path.Base(r.URL.Path)
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		p.show(w, r, id)
	case http.MethodPost:
		p.decide(w, r, id)
	default:
		h.Set("Allow", "GET, HEAD, POST")
		p.render(w, r, http.StatusMethodNotAllowed, &view{
			Title: "Method not allowed", Heading: "Method not allowed", Tone: "bad",
			Paras: [][]part{words("Open the approval link in a browser.")},
		})
	}
}

// show renders the approval for a GET. It reads and never writes.
func (p *page) show(w http.ResponseWriter, r *http.Request, id string) {
	token := r.URL.Query().Get("t")
	rec, tok, err := p.b.CheckToken(r.Context(), id, token)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	now := p.opts.Now()
	if v := p.closed(rec, tok, now); v != nil {
		p.render(w, r, http.StatusOK, v)
		return
	}
	v := p.recordView(rec, now, true)
	v.Rec.Wants = "wants to"
	v.Review = true
	if p.opts.Decide {
		v.Form = p.formView(rec, token)
	} else {
		v.SlackOnly = true
	}
	p.render(w, r, http.StatusOK, v)
}

// decide handles the form post: same-origin check, token, CSRF token, then
// one decision consumed with the token.
func (p *page) decide(w http.ResponseWriter, r *http.Request, id string) {
	if !sameOrigin(r) {
		p.logger.Info("approval page refused a cross-site post",
			zap.String("approval", id), zap.String("origin", r.Header.Get("Origin")),
			zap.String("sec_fetch_site", r.Header.Get("Sec-Fetch-Site")))
		p.render(w, r, http.StatusForbidden, refusedView())
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, pageFormLimit)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			p.render(w, r, http.StatusRequestEntityTooLarge, &view{
				Title: "Form too large", Heading: "The form was too large", Tone: "bad",
				Paras: [][]part{words(fmt.Sprintf("Nothing was decided. The reason may be at most %d characters.", pageReasonMax))},
			})
			return
		}
		p.render(w, r, http.StatusBadRequest, badFormView("The form could not be read. Nothing was decided."))
		return
	}
	token := r.PostForm.Get("t")
	if token == "" {
		token = r.URL.Query().Get("t")
	}
	rec, tok, err := p.b.CheckToken(r.Context(), id, token)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(p.csrf(id, tok.Hash))) {
		p.logger.Info("approval page refused a post without a valid form token", zap.String("approval", id))
		p.render(w, r, http.StatusForbidden, refusedView())
		return
	}
	if !p.opts.Decide {
		v := p.recordView(rec, p.opts.Now(), false)
		v.Title, v.Heading, v.Tone = "Decide in Slack", "Decide in Slack", "warn"
		v.Paras = [][]part{words("Approvers for this countersign are configured in Slack, and this page cannot tell who you are there. Nothing was decided: use the Approve or Deny buttons in the Slack message.")}
		p.render(w, r, http.StatusForbidden, v)
		return
	}

	var approve bool
	switch r.PostForm.Get("decision") {
	case "approve":
		approve = true
	case "deny":
	default:
		p.render(w, r, http.StatusBadRequest, badFormView("Choose Approve or Deny. Nothing was decided."))
		return
	}
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if utf8.RuneCountInString(reason) > pageReasonMax || !utf8.ValidString(reason) {
		p.render(w, r, http.StatusBadRequest, badFormView(fmt.Sprintf("The reason may be at most %d characters. Nothing was decided.", pageReasonMax)))
		return
	}
	var scope time.Duration
	if s := r.PostForm.Get("scope"); approve && s != "" && s != "off" {
		i := slices.IndexFunc(scopeChoices, func(c scopeChoice) bool { return c.Value == s })
		if i < 0 || rec.Operation == "" || scopeChoices[i].For > p.b.opts.MaxScope {
			p.render(w, r, http.StatusBadRequest, badFormView("That scoped grant is not one this page offers. Nothing was decided."))
			return
		}
		scope = scopeChoices[i].For
	}

	// Also under run, where the link speaks for the operator: posted
	// beside the buttons, it would let one Slack user count twice, once by
	// button and once as the operator (found by review).
	if approve && rec.Required >= 2 && tok.Label == "notification" && p.opts.SlackButtons {
		v := p.recordView(rec, p.opts.Now(), false)
		v.Title, v.Heading, v.Tone = "Approve in Slack", "This request needs two approvers", "warn"
		who := "This link does not say who you are, so it cannot count as one of them"
		if p.b.opts.NotificationLinkIsOperators {
			who = "This link is also in the Slack message, where anyone in the channel can open it, so it cannot count as one of them"
		}
		v.Paras = [][]part{words(fmt.Sprintf("It needs %d people to approve. %s: approve with the Approve button in Slack, or with `countersign approvals approve %s`. Nothing was decided.", rec.Required, who, rec.ID))}
		p.render(w, r, http.StatusForbidden, v)
		return
	}
	d := Decision{Approve: approve, Approver: pageApprover(tok.Hash), Via: "page", Reason: reason, ScopeFor: scope}
	if tok.Label == "cli" || (tok.Label == "notification" && p.b.opts.NotificationLinkIsOperators) {
		// A link minted with the admin token (countersign approvals link),
		// or announced on the operator's own terminal, speaks for the
		// admin token's holder.
		d.Identity = p.b.opts.operatorIdentity()
	}
	got, err := p.b.DecideWithToken(r.Context(), id, token, d)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, p.outcome(r.Context(), got, d))
}

// pageApprover names the approver behind a page token: the link, since the
// page cannot know the person. Two links are two approvers.
func pageApprover(tokenHash string) string {
	return "page:" + tokenHash[:min(8, len(tokenHash))]
}

// csrf is the form token for approval id opened with the page token whose
// hash is tokenHash.
func (p *page) csrf(id, tokenHash string) string {
	m := hmac.New(sha256.New, p.opts.Secret)
	m.Write([]byte(id + "\x00" + tokenHash))
	return hex.EncodeToString(m.Sum(nil))
}

// sameOrigin refuses posts that a browser marks as coming from another site.
// The page's own form is always same-origin. Origin is "null" on our own
// posts (Referrer-Policy no-referrer makes browsers send that), so "null"
// is left to the Sec-Fetch-Site and CSRF token checks.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default: // cross-site, same-site (another port or subdomain)
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	// Behind a reverse proxy the browser's Origin names the public host; a
	// form post from another site cannot set X-Forwarded-Host.
	return strings.EqualFold(u.Host, r.Host) ||
		(r.Header.Get("X-Forwarded-Host") != "" && strings.EqualFold(u.Host, r.Header.Get("X-Forwarded-Host")))
}

// fail renders the page for a broker error.
func (p *page) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrBadToken), errors.Is(err, ErrNotFound):
		p.render(w, r, http.StatusNotFound, invalidView())
		return
	case errors.Is(err, ErrTokenUsed), errors.Is(err, ErrDecided), errors.Is(err, ErrExpired), errors.Is(err, ErrDuplicateApprover):
		id := r.PathValue("id")
		if id == "" {
			id = path.Base(r.URL.Path)
		}
		rec, tok, cerr := p.b.CheckToken(r.Context(), id, p.tokenOf(r))
		if cerr == nil {
			now := p.opts.Now()
			v := p.closed(rec, tok, now)
			if v == nil && errors.Is(err, ErrOperatorUnknown) {
				v = p.recordView(rec, now, false)
				v.Title, v.Heading, v.Tone = "Approve in Slack", "This request needs another person", "warn"
				v.Paras = [][]part{words(fmt.Sprintf("A Slack approver has approved, and this link speaks for the admin token, whose holder countersign cannot tell from that Slack user. Another Slack approver must approve, or set approval.operator to the token holder's Slack user ID. Nothing was decided on %s.", rec.ID))}
			}
			if v == nil {
				// ErrDuplicateApprover: this link's approver already approved.
				v = p.recordView(rec, now, false)
				v.Title, v.Heading, v.Tone = "Already approved with this link", "You already approved", "warn"
				v.Paras = [][]part{words(fmt.Sprintf("Another person must approve. Ask for a new link for them with `countersign approvals link %s`.", rec.ID))}
			}
			p.render(w, r, http.StatusConflict, v)
			return
		}
		p.logger.Error("approval page: read approval after a refused decision", zap.Error(cerr))
	default:
		p.logger.Error("approval page", zap.Error(err))
	}
	p.render(w, r, http.StatusInternalServerError, &view{
		Title: "Something went wrong", Heading: "Something went wrong", Tone: "bad",
		Paras: [][]part{words("countersign could not read or record this approval. Check its state with `countersign approvals show ID` before trying again.")},
	})
}

func (p *page) tokenOf(r *http.Request) string {
	if r.Method == http.MethodPost {
		if t := r.PostForm.Get("t"); t != "" {
			return t
		}
	}
	return r.URL.Query().Get("t")
}

// closed returns the page for an approval that this token can no longer
// decide (used link, decided, expired), or nil while it can.
func (p *page) closed(rec *Record, tok Token, now time.Time) *view {
	v := p.recordView(rec, now, false)
	mine := pageApprover(tok.Hash)
	if tok.Used {
		verb := "decide on"
		for _, d := range rec.Decisions {
			if d.Approver == mine {
				verb = map[bool]string{true: "approve", false: "deny"}[d.Approve]
			}
		}
		v.Title, v.Heading, v.Tone = "Link already used", "This link was already used", "warn"
		v.Paras = [][]part{words(fmt.Sprintf("This link was already used to %s %s. Each link decides once.", verb, rec.ID))}
		switch {
		case rec.State == StatePending && now.Before(rec.Expires):
			left := max(rec.Required, 1) - len(rec.Approvers())
			v.Paras = append(v.Paras, words(fmt.Sprintf("The approval still needs %d more %s from other people. Ask for a new link for the next approver with `countersign approvals link %s`.",
				left, plural(left, "approval", "approvals"), rec.ID)))
		default:
			v.Paras = append(v.Paras, stateWords(rec, now)...)
		}
		return v
	}
	switch {
	case rec.State == StateApproved, rec.State == StateDenied:
		v.Title, v.Heading = "Already decided", "Already "+rec.State.String()
		v.Tone = map[State]string{StateApproved: "ok", StateDenied: "bad"}[rec.State]
		v.Paras = stateWords(rec, now)
		return v
	case rec.State == StateExpired, rec.State == StatePending && !now.Before(rec.Expires):
		v.State, v.StateClass = "expired", "expired"
		v.Title, v.Heading, v.Tone = "Expired", "This approval expired", "warn"
		v.Paras = stateWords(rec, now)
		return v
	case rec.State != StatePending:
		v.Title, v.Heading, v.Tone = "Cannot be decided", "This approval cannot be decided", "warn"
		return v
	}
	return nil
}

// stateWords says what happened to an approval that is no longer pending.
func stateWords(rec *Record, now time.Time) [][]part {
	switch {
	case rec.State == StateApproved:
		who := strings.Join(rec.Approvers(), ", ")
		return [][]part{words(fmt.Sprintf("%s was approved by %s. countersign sent the request, or admits one identical retry of it. Nothing is left to do.", rec.ID, who))}
	case rec.State == StateDenied:
		who, why := rec.DenyReason()
		s := fmt.Sprintf("%s was denied by %s. The request was not sent.", rec.ID, who)
		if why != "" {
			return [][]part{words(s), {{Text: "Reason: “" + visible(why) + "”"}}}
		}
		return [][]part{words(s)}
	default:
		return [][]part{words(fmt.Sprintf("%s expired at %s before enough people approved, so the request was not sent. If it is still needed, the agent must make the request again, which asks for a new approval.",
			rec.ID, clock(rec.Expires)))}
	}
}

// outcome is the page after a decision was recorded.
func (p *page) outcome(ctx context.Context, rec *Record, d Decision) *view {
	now := p.opts.Now()
	v := p.recordView(rec, now, false)
	switch rec.State {
	case StateApproved:
		v.Title, v.Heading, v.Tone = "Approved", "Approved", "ok"
		v.Paras = [][]part{words("countersign sends the held request now. If the agent stopped waiting, one identical retry from the same session is admitted within " + shortDur(p.b.GrantTTL()) + ".")}
		if d.ScopeFor > 0 && rec.AgreedScope() == 0 {
			v.Paras = append(v.Paras, words("No scoped grant was made: under the two-person rule every approver must ask for one, and another approver did not."))
		} else if d.ScopeFor > 0 {
			scopes, err := p.b.Scopes(ctx, true)
			if err != nil {
				p.logger.Error("approval page: list scoped grants", zap.Error(err))
			}
			for _, sc := range scopes {
				if sc.ApprovalID == rec.ID {
					ph := phrase{}
					ph.text("Also allowed for this session until " + clock(sc.Expires) + ": ")
					ph.code(sc.Operation)
					if len(sc.Resources) > 0 {
						ph.text(" on ")
						ph.list(sc.Resources)
					}
					ph.text(". Revoke it with ")
					ph.code("countersign approvals revoke " + sc.ID)
					ph.text(".")
					v.Paras = append(v.Paras, ph)
				}
			}
		}
	case StateDenied:
		v.Title, v.Heading, v.Tone = "Denied", "Denied", "bad"
		msg := fmt.Sprintf("The request was not sent. The agent is told it was denied by %s", d.Approver)
		if d.Reason != "" {
			v.Paras = [][]part{words(msg + ", with your reason:"), {{Text: "“" + visible(d.Reason) + "”"}}}
		} else {
			v.Paras = [][]part{words(msg + ".")}
		}
	default:
		n, req := len(rec.Approvers()), max(rec.Required, 1)
		v.Title, v.Heading, v.Tone = "Approval recorded", fmt.Sprintf("Your approval is recorded: %d of %d", n, req), "ok"
		v.Paras = [][]part{words(fmt.Sprintf("The request is still held: %d more %s from other people %s needed. Each approver needs their own link: `countersign approvals link %s`.",
			req-n, plural(req-n, "approval", "approvals"), plural(req-n, "is", "are"), rec.ID))}
	}
	return v
}

// render writes v as HTML with status. HEAD gets the headers only.
func (p *page) render(w http.ResponseWriter, r *http.Request, status int, v *view) {
	v.CSS = template.CSS(pageCSS)
	var buf bytes.Buffer
	if err := pageTemplate.ExecuteTemplate(&buf, "page", v); err != nil {
		p.logger.Error("approval page: render", zap.Error(err))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("countersign: the approval page could not be rendered\n"))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// view is what the page template shows. Pages that must not reveal an
// approval (wrong token) leave Rec nil and ID empty.
type view struct {
	Title      string
	CSS        template.CSS
	ID         string
	State      string
	StateClass string

	Heading string
	Tone    string // ok, bad, warn
	Paras   [][]part

	Rec       *recordView
	Review    bool // the full review page of a pending approval
	Form      *formView
	SlackOnly bool
}

type recordView struct {
	// Wants is "wants to" while the approval can be decided, else "asked to".
	Wants      string
	Session    string
	SessionID  string
	Phrase     phrase
	Messages   []string
	RuleIDs    []string
	Required   int
	Approvals  int
	Decisions  []decisionView
	TimeLeft   string
	Expires    string
	Method     string
	URL        string
	Headers    []headerRow
	Body       string
	BodyNote   string
	BodySize   int64
	BodySHA256 string
}

type decisionView struct {
	Verb     string
	Approver string
	Via      string
	At       string
	Reason   string
}

type headerRow struct{ Name, Value string }

type formView struct {
	Action    string
	Token     string
	CSRF      string
	Scope     bool
	Operation string
	Resources phrase
	Choices   []scopeChoice
	Required  int
	MaxReason int
}

type scopeChoice struct {
	Value string
	Label string
	For   time.Duration
}

func (p *page) recordView(rec *Record, now time.Time, full bool) *view {
	rv := &recordView{
		Wants:     "asked to",
		Session:   visible(rec.SessionName),
		SessionID: visible(rec.SessionID),
		Phrase:    describe(rec),
		Messages:  visibleAll(rec.Messages),
		RuleIDs:   visibleAll(rec.RuleIDs),
		Required:  max(rec.Required, 1),
		Approvals: len(rec.Approvers()),
		Expires:   clock(rec.Expires),
		TimeLeft:  timeLeft(rec.Expires.Sub(now)),
		Method:    visible(rec.Request.Method),
		URL:       visible(rec.Request.URL),
		BodySize:  rec.Request.BodySize,
	}
	if rv.Session == "" {
		rv.Session = rec.SessionID
		rv.SessionID = ""
	}
	for _, d := range rec.Decisions {
		rv.Decisions = append(rv.Decisions, decisionView{
			Verb: map[bool]string{true: "approved", false: "denied"}[d.Approve], Approver: visible(d.Approver),
			Via: visible(d.Via), At: clock(d.At), Reason: visible(d.Reason),
		})
	}
	if full {
		for _, k := range slices.Sorted(mapKeys(rec.Request.Headers)) {
			for _, val := range rec.Request.Headers[k] {
				rv.Headers = append(rv.Headers, headerRow{visible(k), visible(val)})
			}
		}
		rv.Body, rv.BodyNote = prettyBody(rec.Request.Body)
		rv.Body = visible(rv.Body)
		rv.BodySHA256 = visible(rec.Request.BodySHA256)
	}
	state := rec.State.String()
	return &view{
		Title:      fmt.Sprintf("Approval %s (%s)", rec.ID, state),
		ID:         rec.ID,
		State:      state,
		StateClass: state,
		Rec:        rv,
	}
}

func (p *page) formView(rec *Record, token string) *formView {
	f := &formView{
		Action:    "./" + rec.ID,
		Token:     token,
		CSRF:      p.csrf(rec.ID, HashToken(token)),
		Scope:     rec.Operation != "",
		Operation: visible(rec.Operation),
		Required:  max(rec.Required, 1),
		MaxReason: pageReasonMax,
	}
	// The form names what a scoped grant covers: all of it, within reason.
	// Masked again for records stored before resources were masked.
	f.Resources.listUpTo(redact.Strings(rec.Resources), 100)
	for _, c := range scopeChoices {
		if c.For <= p.b.opts.MaxScope {
			f.Choices = append(f.Choices, c)
		}
	}
	return f
}

func mapKeys(m map[string][]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// prettyBody indents a JSON body; anything else is shown as it is.
func prettyBody(body string) (string, string) {
	if body == "" {
		return "", ""
	}
	if json.Valid([]byte(body)) {
		var buf bytes.Buffer
		// Indentation grows with depth; a deeply nested body (shown on one
		// line by the proxy for that reason) stays as it is.
		if err := json.Indent(&buf, []byte(body), "", "  "); err == nil && buf.Len() <= 2*len(body)+4<<10 {
			return buf.String(), "JSON, indented for reading"
		}
	}
	return body, ""
}

func refusedView() *view {
	return &view{
		Title: "Refused", Heading: "This form submission was refused", Tone: "bad",
		Paras: [][]part{
			words("Nothing was decided. The decision must be sent from the approval page itself: the form token was missing or wrong, or the request came from another site."),
			words("Open the approval link again and use the buttons on that page."),
		},
	}
}

func invalidView() *view {
	return &view{
		Title: "Approval link not valid", Heading: "This approval link is not valid", Tone: "bad",
		Paras: [][]part{
			words("The link is incomplete, mistyped, or not from this countersign. Copy the whole link from the terminal or the Slack message."),
			words("Someone who runs countersign can make a new link with `countersign approvals link <approval id>`."),
		},
	}
}

func badFormView(msg string) *view {
	return &view{Title: "Bad form", Heading: "The form could not be used", Tone: "bad", Paras: [][]part{words(msg)}}
}

// part is a piece of a sentence; Code pieces are shown in monospace.
type part struct {
	Text string
	Code bool
	// Isolate marks plain text holding right-to-left letters: only agent
	// input can bring them into a sentence of countersign's, and they
	// must not reorder the words around them, so it is shown isolated.
	Isolate bool
}

// words splits trusted text at backquotes into plain and code parts.
// Agent-controlled strings never go through it.
func words(s string) []part {
	var out []part
	for i, piece := range strings.Split(s, "`") {
		if piece != "" {
			out = append(out, part{Text: piece, Code: i%2 == 1})
		}
	}
	return out
}

func clock(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// timeLeft says how long remains, in words.
func timeLeft(d time.Duration) string {
	switch {
	case d <= 0:
		return "none"
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		m := int(d / time.Minute)
		return fmt.Sprintf("%d %s", m, plural(m, "minute", "minutes"))
	case d < 48*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		s := fmt.Sprintf("%d %s", h, plural(h, "hour", "hours"))
		if m > 0 {
			s += fmt.Sprintf(" %d min", m)
		}
		return s
	default:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
}

func shortDur(d time.Duration) string {
	if d%time.Minute == 0 && d < 48*time.Hour {
		return timeLeft(d)
	}
	return d.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// phrase is a sentence made of parts; agent-controlled values go in as whole
// parts, so nothing in them is interpreted.
type phrase []part

func (p *phrase) text(s string) {
	s = visible(s)
	*p = append(*p, part{Text: s, Isolate: rightToLeft(s)})
}

// rightToLeft reports whether s holds a character that is laid out right
// to left, or as an Arabic number, which can move the text around it.
func rightToLeft(s string) bool {
	for _, r := range s {
		if r < 0x0590 {
			continue // Latin, Greek, Cyrillic and the like
		}
		props, _ := bidi.LookupRune(r)
		if c := props.Class(); c == bidi.R || c == bidi.AL || c == bidi.AN {
			return true
		}
	}
	return false
}
func (p *phrase) code(s string) { *p = append(*p, part{Text: visible(clip(s, 200)), Code: true}) }

// list appends items as code, "a, b and 3 more": the first five, as fits a
// one-line summary.
func (p *phrase) list(items []string) { p.listUpTo(items, 5) }

// listUpTo is list showing up to show items.
func (p *phrase) listUpTo(items []string, show int) {
	for i, it := range items {
		if i == show {
			p.text(fmt.Sprintf(" and %d more", len(items)-show))
			return
		}
		if i > 0 {
			p.text(", ")
		}
		p.code(it)
	}
}

// String renders the phrase with code parts in backquotes.
func (p phrase) String() string {
	var b strings.Builder
	for _, pt := range p {
		if pt.Code {
			b.WriteString("`" + pt.Text + "`")
		} else {
			b.WriteString(pt.Text)
		}
	}
	return b.String()
}

// visible shows characters that change how text reads without being seen
// themselves (bidirectional overrides, zero-width and other format
// characters, control characters, fillers and other default-ignorable
// characters, variation selectors but an emoji's, and
// combining marks past maxMarks in a row) as "<U+202E>", so agent-controlled
// text cannot reorder or hide what the approver reads. Newlines, carriage
// returns and tabs stay; invalid UTF-8 becomes U+FFFD.
func visible(s string) string {
	var ink inkFilter
	if utf8.ValidString(s) && !strings.ContainsFunc(s, ink.hides) {
		return s
	}
	var b strings.Builder
	ink = inkFilter{}
	for _, r := range s {
		if ink.hides(r) {
			fmt.Fprintf(&b, "<U+%04X>", r)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// maxMarks is how many combining marks in a row are drawn as they are:
// enough for Vietnamese, Thai or Devanagari, too few to draw a character
// over the lines around it.
const maxMarks = 3

// inkFilter decides, rune by rune, which characters of a text an approver
// would not see, or would see drawn over other text. Its zero value starts
// a text.
type inkFilter struct {
	base  bool // the last rune shown is a character that takes marks
	vs    bool // it already has its variation selector
	marks int  // combining marks shown on it
}

// hides reports whether r must be shown by its code point. Found by review:
// variation selectors carry one byte each ("emoji smuggling"), so a comment
// that reads "Thanks!" can hide a paragraph. One emoji or text
// presentation selector after a character (⚠️ is U+26A0 U+FE0F) is how
// emoji are written and stays; the other selectors (ideographic and
// Mongolian variants, rare in what agents send) are named.
func (f *inkFilter) hides(r rune) bool {
	switch {
	case r == '\n' || r == '\r' || r == '\t':
		*f = inkFilter{}
		return false
	case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) ||
		r == 0x2800 || r == 0x1D159: // drawn blank: the Braille pattern blank, the null notehead
		// Other_Default_Ignorable: the combining grapheme joiner, Hangul
		// fillers, Khmer's inherent vowels.
		f.base = false
		return true
	case unicode.Is(unicode.Variation_Selector, r):
		shown := (r == 0xFE0E || r == 0xFE0F) && f.base && !f.vs
		f.vs = true
		return !shown
	case unicode.In(r, unicode.Mn, unicode.Me):
		f.marks++
		return f.marks > maxMarks
	}
	*f = inkFilter{base: true}
	return false
}

func visibleAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = visible(s)
	}
	return out
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// describe says in plain words what the held request does, from the action
// the classifier extracted: "delete DynamoDB table `orders` in us-east-1".
// Without a recognised action it names the method and URL.
func describe(rec *Record) phrase {
	a := rec.Action
	var p phrase
	switch str(a, "provider") {
	case "aws":
		p = describeAWS(a)
	case "kubernetes":
		p = describeKubernetes(a)
	case "github":
		p = describeGitHub(a)
	case "git":
		p = describeGit(a)
	case "mcp":
		p = describeMCP(a)
	case "graphql":
		p = describeGraphQL(a, rec.Request.URL)
	}
	if len(p) > 0 {
		return p
	}
	if rec.Request.Method == "" && rec.Request.URL == "" {
		p.text(rec.Summary)
		return p
	}
	if rec.Request.Method == http.MethodConnect || str(a, "operation") == http.MethodConnect {
		p.text("open an uninspected tunnel to ")
		p.code(rec.Request.URL)
		return p
	}
	p.code(rec.Request.Method)
	p.text(" ")
	p.code(rec.Request.URL)
	return p
}

// str reads a string member of an action map.
func str(m map[string]any, k string) string {
	switch v := m[k].(type) {
	case string:
		return v
	case nil:
		return ""
	case bool:
		return strconv.FormatBool(v)
	case float64, int, int64, json.Number:
		return fmt.Sprint(v)
	case fmt.Stringer:
		return v.String()
	default:
		return ""
	}
}

// strs reads a list of strings from an action map ([]string as built, []any
// after a JSON round trip).
func strs(m map[string]any, k string) []string {
	switch v := m[k].(type) {
	case []string:
		return v
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case string:
		if v != "" {
			return []string{v}
		}
	}
	return nil
}

var awsServiceNames = map[string]string{
	"apigateway": "API Gateway", "athena": "Athena", "autoscaling": "Auto Scaling",
	"cloudformation": "CloudFormation", "cloudfront": "CloudFront", "cloudtrail": "CloudTrail",
	"cognito-idp": "Cognito", "dynamodb": "DynamoDB", "ec2": "EC2", "ecr": "ECR", "ecs": "ECS",
	"eks": "EKS", "elasticache": "ElastiCache", "elasticloadbalancing": "ELB", "events": "EventBridge",
	"glue": "Glue", "iam": "IAM", "kinesis": "Kinesis", "kms": "KMS", "lambda": "Lambda",
	"logs": "CloudWatch Logs", "monitoring": "CloudWatch", "organizations": "Organizations",
	"rds": "RDS", "redshift": "Redshift", "route53": "Route 53", "s3": "S3",
	"secretsmanager": "Secrets Manager", "sns": "SNS", "sqs": "SQS", "ssm": "SSM",
	"states": "Step Functions", "sts": "STS",
}

// awsVerbs are the leading words of AWS operation names that read as verbs.
var awsVerbs = map[string]bool{
	"add": true, "apply": true, "associate": true, "assume": true, "attach": true, "authorize": true,
	"cancel": true, "change": true, "copy": true, "create": true, "delete": true, "deregister": true,
	"describe": true, "detach": true, "disable": true, "disassociate": true, "enable": true,
	"export": true, "get": true, "import": true, "invoke": true, "list": true, "modify": true,
	"publish": true, "purge": true, "put": true, "reboot": true, "register": true, "release": true,
	"remove": true, "replace": true, "reset": true, "restore": true, "revoke": true, "run": true,
	"send": true, "set": true, "start": true, "stop": true, "tag": true, "terminate": true,
	"untag": true, "update": true,
}

func describeAWS(a map[string]any) phrase {
	service, op, region := str(a, "service"), str(a, "operation"), str(a, "region")
	if op == "" {
		return nil
	}
	resources := strs(a, "resources")
	var p phrase
	ws := splitCamel(op)
	if len(ws) >= 2 && awsVerbs[strings.ToLower(ws[0])] {
		p.text(strings.ToLower(ws[0]))
		if name := awsServiceNames[service]; name != "" {
			p.text(" " + name)
		} else if service != "" {
			p.text(" ")
			p.code(service)
		}
		for _, w := range ws[1:] {
			if len(w) < 2 || strings.ToUpper(w) != w {
				w = strings.ToLower(w)
			}
			p.text(" " + w)
		}
		if len(resources) > 0 {
			p.text(" ")
			p.list(resources)
		}
	} else {
		if service != "" {
			op = service + ":" + op
		}
		p.code(op)
		if len(resources) > 0 {
			p.text(" on ")
			p.list(resources)
		}
	}
	if region != "" {
		p.text(" in ")
		p.code(clip(region, 40))
	}
	return p
}

// splitCamel splits "DeleteDBInstance" into "Delete", "DB", "Instance".
func splitCamel(s string) []string {
	rs := []rune(s)
	var out []string
	start := 0
	isUpper := func(r rune) bool { return r >= 'A' && r <= 'Z' }
	isLower := func(r rune) bool { return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' }
	for i := 1; i < len(rs); i++ {
		if isUpper(rs[i]) && (isLower(rs[i-1]) || isUpper(rs[i-1]) && i+1 < len(rs) && isLower(rs[i+1])) {
			out = append(out, string(rs[start:i]))
			start = i
		}
	}
	if start < len(rs) {
		out = append(out, string(rs[start:]))
	}
	return out
}

var kubernetesVerbs = map[string]string{
	"get": "read", "list": "list", "watch": "watch", "create": "create", "update": "replace",
	"patch": "patch", "delete": "delete", "deletecollection": "delete all",
}

var kubernetesSubresources = map[string]string{
	"exec": "run a command in", "attach": "attach to", "portforward": "port-forward to",
	"proxy": "proxy to", "log": "read the logs of",
}

func describeKubernetes(a map[string]any) phrase {
	verb, resource := str(a, "verb"), str(a, "resource")
	if resource == "" {
		return nil
	}
	sub, name, ns := str(a, "subresource"), str(a, "name"), str(a, "namespace")
	var p phrase
	target := resource
	if name != "" {
		target += "/" + name
	}
	if v, ok := kubernetesSubresources[sub]; ok {
		p.text(v + " Kubernetes ")
	} else {
		if v, ok := kubernetesVerbs[verb]; ok {
			p.text(v)
		} else {
			p.code(verb)
		}
		p.text(" Kubernetes ")
		if sub != "" {
			target += "/" + sub
		}
	}
	p.code(target)
	if ns != "" {
		p.text(" in namespace ")
		p.code(ns)
	}
	if a["dry_run"] == true {
		p.text(" (dry run)")
	}
	return p
}

var githubOperations = map[string]string{
	"repos/delete":                         "delete GitHub repository",
	"repos/update":                         "change the settings of GitHub repository",
	"repos/transfer":                       "transfer GitHub repository",
	"git/delete-ref":                       "delete a branch or tag in GitHub repository",
	"git/update-ref":                       "move a branch or tag in GitHub repository",
	"pulls/merge":                          "merge a pull request in GitHub repository",
	"repos/update-branch-protection":       "change branch protection in GitHub repository",
	"repos/delete-branch-protection":       "remove branch protection in GitHub repository",
	"repos/create-deployment":              "deploy from GitHub repository",
	"actions/create-or-update-repo-secret": "set an Actions secret in GitHub repository",
}

func describeGitHub(a map[string]any) phrase {
	ops := strs(a, "operation")
	repo := str(a, "repo")
	if owner := str(a, "owner"); owner != "" && repo != "" {
		repo = owner + "/" + repo
	}
	var p phrase
	switch {
	case len(ops) == 1 && githubOperations[ops[0]] != "" && repo != "":
		p.text(githubOperations[ops[0]] + " ")
		p.code(repo)
	case len(ops) > 0 && strings.Contains(ops[0], "/"):
		p.text("GitHub ")
		p.list(ops)
		if repo != "" {
			p.text(" on ")
			p.code(repo)
		}
	case len(ops) > 0:
		p.text("run GitHub GraphQL ")
		p.text(plural(len(ops), "mutation ", "mutations "))
		p.list(ops)
	}
	return p
}

func describeGit(a map[string]any) phrase {
	repo := str(a, "repo")
	var p phrase
	switch str(a, "service") {
	case "receive-pack", "git-receive-pack":
		p.text("push to Git repository ")
		p.code(repo)
		// Deletions first, then updates (a force push is one), then
		// creations: the list stops after a few, and what it leaves out
		// must not be what destroys something. The counts cover them all.
		rank := func(kind string) int {
			switch kind {
			case "delete":
				return 1
			case "update":
				return 2
			case "create":
				return 3
			}
			return 0 // an unknown kind is shown first
		}
		type update struct{ kind, ref string }
		var us []update
		counts := map[string]int{}
		if list, ok := a["updates"].([]any); ok {
			for _, u := range list {
				if m, ok := u.(map[string]any); ok {
					us = append(us, update{str(m, "kind"), str(m, "ref")})
					counts[str(m, "kind")]++
				}
			}
		}
		slices.SortStableFunc(us, func(x, y update) int { return rank(x.kind) - rank(y.kind) })
		if len(us) > 0 {
			p.text(": ")
			if len(us) > 1 {
				kinds := slices.Sorted(maps.Keys(counts))
				slices.SortStableFunc(kinds, func(x, y string) int { return rank(x) - rank(y) })
				var c []string
				for _, k := range kinds {
					c = append(c, fmt.Sprintf("%d %s", counts[k], k))
				}
				p.text(strings.Join(c, ", ") + " (")
			}
			updates := make([]string, len(us))
			for i, u := range us {
				updates[i] = strings.TrimSpace(u.kind + " " + u.ref)
			}
			p.list(updates)
			if len(us) > 1 {
				p.text(")")
			}
		}
	case "upload-pack", "git-upload-pack":
		p.text("fetch from Git repository ")
		p.code(repo)
	}
	return p
}

func describeMCP(a map[string]any) phrase {
	method, tool, server := str(a, "method"), str(a, "tool"), str(a, "server")
	var p phrase
	switch {
	case method == "tools/call" && tool != "":
		p.text("call MCP tool ")
		p.code(tool)
	case method != "":
		p.text("MCP ")
		p.code(method)
	default:
		return nil
	}
	if server != "" {
		p.text(" on ")
		p.code(server)
	}
	return p
}

func describeGraphQL(a map[string]any, rawURL string) phrase {
	fields := strs(a, "fields")
	if len(fields) == 0 {
		return nil
	}
	kind := str(a, "operation_type")
	if kind == "" {
		kind = "query"
	}
	var p phrase
	p.text("run GraphQL " + clip(kind, 20) + " ")
	p.list(fields)
	if u, err := url.Parse(rawURL); err == nil && u.Host != "" {
		p.text(" on ")
		p.code(u.Host)
	}
	return p
}
