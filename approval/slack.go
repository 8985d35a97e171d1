package approval

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackutilsx"
	"go.uber.org/zap"

	"github.com/countersign/countersign/audit"
	"github.com/countersign/countersign/internal/redact"
)

// SlackOptions configures Slack notifications and callbacks.
//
// With BotToken the Slack value runs in bot mode: approvals are posted with
// chat.postMessage as Block Kit messages with Approve and Deny buttons, the
// buttons call back InteractiveHandler (which needs SigningSecret), and the
// message is updated with the outcome. With only WebhookURL it posts to an
// incoming webhook: the message carries the approval page link, and the
// outcome follows as a second message (a webhook cannot edit or receive
// anything).
type SlackOptions struct {
	WebhookURL    string
	BotToken      string
	Channel       string
	SigningSecret string
	// Approvers are the Slack user IDs allowed to decide; empty means anyone
	// in the workspace who can click the button.
	Approvers []string
	// APIURL overrides the Slack Web API base URL (tests).
	APIURL string
	// HTTP is the client for the Web API and the webhook. The default uses
	// no proxy from the environment and does not follow redirects.
	HTTP *http.Client
	Now  func() time.Time
}

// Slack posts approval requests to Slack and handles its interactive
// callbacks. Deliveries run in one goroutine owned by the Slack value, in the
// order Notify queued them; Close stops it.
type Slack struct {
	opts      SlackOptions
	b         *Broker
	logger    *zap.Logger
	tune      slackTuning
	api       *slack.Client // nil in webhook mode
	http      *http.Client
	approvers map[string]bool

	mu        sync.Mutex
	queue     slackQueue
	wake      chan struct{} // a job was queued, or Close ran; capacity 1
	started   bool
	closed    bool
	aborted   bool
	cancelJob context.CancelFunc // the delivery in flight, for Close
	done      chan struct{}
}

// Identifiers that the buttons carry and the callbacks are matched on.
const (
	slackActionApprove = "countersign_approve"
	slackActionDeny    = "countersign_deny"
	slackActionReview  = "countersign_review"
	slackBlockActions  = "countersign_actions"

	// Notice kinds: a bot message (Ref is its ts, updated on the outcome) and
	// a webhook post (no ref; the outcome is posted as a follow-up).
	// slackDenyReason is the reason a Deny button gives: the agent reads
	// "denied by approver slack:T…/U… (ap-…): denied in Slack".
	slackDenyReason = "denied in Slack"

	slackNoticeKind        = "slack"
	slackWebhookNoticeKind = "slack-webhook"
)

// Limits of the interactive endpoint (SPEC 7.6).
const (
	slackBodyLimit = 64 << 10
	// slackMaxSkew is how far a callback's timestamp may be from now.
	slackMaxSkew = 5 * time.Minute
	// slackReplayTTL keeps a callback's signature long enough to cover every
	// moment at which its timestamp is still accepted (ts ≤ now+5m, so it is
	// accepted until at most now+10m).
	slackReplayTTL = 2 * slackMaxSkew
)

// Limits of what an agent can put in a message. Slack allows 3000
// characters in a section's text and 2000 in a field; values are cut well
// before that so one long value cannot push the others out.
const (
	slackValueLimit   = 200
	slackSessionLimit = 100
	slackMessageLimit = 300
	slackURLLimit     = 300
	slackMaxResources = 5
	slackExcerptLimit = 600
	slackMaxMessages  = 5
	slackMaxRules     = 3
	slackTextLimit    = 3000
	slackFieldLimit   = 2000
	slackFallbackMax  = 400
)

// slackTuning holds the delivery knobs; tests shorten them.
type slackTuning struct {
	queue         int           // notifications waiting per session; more are dropped
	timeout       time.Duration // one Slack API call
	attempts      int           // per delivery, including the first
	backoff       time.Duration // first wait after a 5xx or a network error
	maxBackoff    time.Duration
	maxRetryAfter time.Duration // a longer Retry-After gives up instead
	drain         time.Duration // Close waits this long for queued deliveries
	sleep         func(ctx context.Context, d time.Duration) error
}

func defaultSlackTuning() slackTuning {
	return slackTuning{
		queue:         256,
		timeout:       10 * time.Second,
		attempts:      4,
		backoff:       time.Second,
		maxBackoff:    30 * time.Second,
		maxRetryAfter: time.Minute,
		drain:         3 * time.Second,
		sleep:         slackSleep,
	}
}

type slackJobKind int

const (
	slackJobUnknown slackJobKind = iota
	slackJobRequested
	slackJobDecided
	slackJobEphemeral
)

type slackJob struct {
	kind slackJobKind
	// ctx carries the values of the context that queued the job, not its
	// cancellation: a delivery outlives the request that caused it.
	ctx  context.Context
	rec  *Record
	link string
	// ephemeral replies
	channel, user, text string
}

// NewSlack returns a Slack notifier bound to a broker. It checks the options
// and starts nothing: the delivery goroutine starts with the first
// notification.
func NewSlack(opts SlackOptions, b *Broker, logger *zap.Logger) (*Slack, error) {
	return newSlack(opts, b, logger, defaultSlackTuning())
}

func newSlack(opts SlackOptions, b *Broker, logger *zap.Logger, tune slackTuning) (*Slack, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	logger = logger.Named("approval").Named("slack")
	if b == nil {
		return nil, errors.New("slack needs an approval broker")
	}
	if opts.WebhookURL == "" && opts.BotToken == "" {
		return nil, errors.New("set webhook_url or bot_token")
	}
	if opts.BotToken != "" {
		if opts.SigningSecret == "" {
			return nil, errors.New("bot_token needs signing_secret (to verify Slack's button callbacks)")
		}
		if opts.Channel == "" {
			return nil, errors.New("bot_token needs channel (the channel ID to post to)")
		}
		if opts.WebhookURL != "" {
			logger.Warn("approval.slack has both bot_token and webhook_url; posting with the bot token only")
		}
	} else if err := checkSlackURL(opts.WebhookURL); err != nil {
		// The webhook URL is a credential: the error never repeats it.
		return nil, fmt.Errorf("webhook_url: %w", err)
	}
	if opts.APIURL == "" {
		opts.APIURL = slack.APIURL
	} else if err := checkSlackURL(opts.APIURL); err != nil {
		return nil, fmt.Errorf("api url: %w", err)
	}
	approvers := map[string]bool{}
	for _, id := range opts.Approvers {
		if !slackIDPattern.MatchString(id) {
			return nil, fmt.Errorf("approvers: %q is not a Slack user ID such as U012AB3CD", id)
		}
		approvers[id] = true
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTP == nil {
		opts.HTTP = defaultSlackHTTP()
	}
	s := &Slack{
		opts:      opts,
		b:         b,
		logger:    logger,
		tune:      tune,
		http:      opts.HTTP,
		approvers: approvers,
		queue:     slackQueue{limit: tune.queue},
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	if opts.BotToken != "" {
		s.api = slack.New(opts.BotToken,
			slack.OptionAPIURL(strings.TrimRight(opts.APIURL, "/")+"/"),
			slack.OptionHTTPClient(opts.HTTP),
			slack.OptionLog(zap.NewStdLog(logger)),
		)
	}
	return s, nil
}

// checkSlackURL accepts https URLs, and http only to a loopback address
// (local fakes in tests). Errors never include the URL.
func checkSlackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return errors.New("want an absolute https:// URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); (ip != nil && ip.IsLoopback()) || h == "localhost" {
			return nil
		}
		return errors.New("want https:// (plain http is only accepted for a loopback address)")
	default:
		return errors.New("want an absolute https:// URL")
	}
}

// defaultSlackHTTP is the client used without SlackOptions.HTTP. Library
// code reads no proxy variables (STYLE); a webhook that redirects gets its
// 3xx back as an error instead of having the message re-posted elsewhere.
func defaultSlackHTTP() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 15 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   2,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Notify implements Notifier. It queues the delivery and returns at once;
// when the queue is full or the Slack value is closed the notification is
// dropped and logged. A Slack failure never decides anything.
func (s *Slack) Notify(ctx context.Context, n Notification) {
	if n.Record == nil {
		return
	}
	var kind slackJobKind
	switch n.Event {
	case "requested":
		kind = slackJobRequested
	case "decided":
		kind = slackJobDecided
	default:
		return
	}
	s.enqueue(slackJob{kind: kind, ctx: context.WithoutCancel(ctx), rec: n.Record.Clone(), link: n.Link})
}

// enqueue hands a job to the delivery goroutine without blocking. A
// session whose queue is full loses its own notification, audited: one
// session's flood must not push out another's.
func (s *Slack) enqueue(j slackJob) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.logger.Debug("slack is closed; notification dropped", zap.String("approval", slackJobApprovalID(j)))
		return
	}
	if !s.started {
		s.started = true
		go s.run()
	}
	queued := s.queue.push(j)
	s.mu.Unlock()
	if queued {
		select {
		case s.wake <- struct{}{}:
		default:
		}
		return
	}
	s.logger.Warn("slack delivery queue of the session full; notification dropped",
		zap.String("approval", slackJobApprovalID(j)), zap.Int("queue", s.tune.queue))
	if j.rec != nil && j.kind == slackJobRequested {
		// The broker recorded "notified" when it handed the notification
		// over; the log must also say that it never went out.
		_ = s.b.Audit(&audit.Event{Type: "approval", ApprovalID: j.rec.ID,
			Detail: fmt.Sprintf("slack notification not sent: the session has %d notifications waiting for Slack already", s.tune.queue)})
	}
}

// slackQueue holds the jobs waiting for delivery, a queue per session, and
// hands them out in turn: Slack takes about one message a second, so a
// session that opens hundreds of approvals would otherwise delay every
// other session's first message by minutes, past its hold.
type slackQueue struct {
	limit  int                   // jobs per session
	by     map[string][]slackJob // by session; no entry when empty
	turn   []string              // sessions with jobs, next first
	queued int
}

// push adds j to its session's queue, or reports false when that is full.
func (q *slackQueue) push(j slackJob) bool {
	sid := ""
	if j.rec != nil {
		sid = j.rec.SessionID
	}
	if len(q.by[sid]) >= q.limit {
		return false
	}
	if q.by == nil {
		q.by = map[string][]slackJob{}
	}
	if len(q.by[sid]) == 0 {
		q.turn = append(q.turn, sid)
	}
	q.by[sid] = append(q.by[sid], j)
	q.queued++
	return true
}

// pop takes the next job: the oldest of the session whose turn it is.
func (q *slackQueue) pop() (slackJob, bool) {
	if len(q.turn) == 0 {
		return slackJob{}, false
	}
	sid := q.turn[0]
	q.turn = q.turn[1:]
	jobs := q.by[sid]
	j := jobs[0]
	jobs[0] = slackJob{}
	if jobs = jobs[1:]; len(jobs) > 0 {
		q.by[sid] = jobs
		q.turn = append(q.turn, sid) // its next job waits for the others'
	} else {
		delete(q.by, sid)
	}
	q.queued--
	return j, true
}

// next waits for a job to deliver; false once Close ran and none is left.
func (s *Slack) next() (slackJob, bool) {
	for {
		s.mu.Lock()
		j, ok := s.queue.pop()
		closed := s.closed
		s.mu.Unlock()
		if ok {
			return j, true
		}
		if closed {
			return slackJob{}, false
		}
		<-s.wake
	}
}

func slackJobApprovalID(j slackJob) string {
	if j.rec != nil {
		return j.rec.ID
	}
	return ""
}

// Close stops the delivery goroutine and waits for it. Deliveries already
// queued get a short grace period; after it the one in flight is cancelled
// and the rest are dropped. Notifications after Close are dropped.
func (s *Slack) Close() {
	s.mu.Lock()
	if s.closed {
		started := s.started
		s.mu.Unlock()
		if started {
			<-s.done
		}
		return
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}

	if started {
		timer := time.NewTimer(s.tune.drain)
		select {
		case <-s.done:
		case <-timer.C:
			s.mu.Lock()
			s.aborted = true
			if s.cancelJob != nil {
				s.cancelJob()
			}
			s.mu.Unlock()
			<-s.done
		}
		timer.Stop()
	}
	s.http.CloseIdleConnections()
}

// run delivers queued jobs one at a time, so that a message is posted
// before it is updated.
func (s *Slack) run() {
	defer close(s.done)
	dropped := 0
	for {
		j, ok := s.next()
		if !ok {
			break
		}
		ctx, cancel := context.WithCancel(j.ctx)
		s.mu.Lock()
		aborted := s.aborted
		s.cancelJob = cancel
		s.mu.Unlock()
		if aborted {
			dropped++
		} else {
			s.deliver(ctx, j)
		}
		s.mu.Lock()
		s.cancelJob = nil
		s.mu.Unlock()
		cancel()
	}
	if dropped > 0 {
		s.logger.Warn("slack notifications dropped at shutdown", zap.Int("count", dropped))
	}
}

func (s *Slack) deliver(ctx context.Context, j slackJob) {
	switch j.kind {
	case slackJobRequested:
		s.postRequest(ctx, j.rec, j.link)
	case slackJobDecided:
		s.postOutcome(ctx, j.rec)
	case slackJobEphemeral:
		s.postEphemeral(ctx, j.channel, j.user, j.text)
	}
}

// postRequest announces a new approval.
func (s *Slack) postRequest(ctx context.Context, rec *Record, link string) {
	// The decision may have come before this job ran (a "decided" queued
	// ahead of "requested" by a fast approver): announce what stands now,
	// never live buttons for a decided approval.
	if cur, err := s.b.Store().Get(ctx, rec.ID); err == nil {
		rec = cur
	}
	text, blocks := s.requestMessage(rec, link)
	if rec.State != StatePending {
		text, blocks = s.outcomeMessage(rec)
	}
	log := s.logger.With(zap.String("approval", rec.ID))

	if s.api == nil {
		if rec.Channel != "" {
			log.Info("an incoming webhook posts to its own channel; the policy's channel is not used",
				zap.String("channel", rec.Channel))
		}
		if err := s.retry(ctx, "webhook", func(ctx context.Context) error {
			return s.postWebhook(ctx, text, blocks)
		}); err != nil {
			log.Error("slack notification failed", zap.String("via", "webhook"), zap.Error(slackScrubError(err)))
			_ = s.b.Audit(&audit.Event{Type: "approval", ApprovalID: rec.ID, Via: "slack", Detail: "Slack delivery failed (incoming webhook); see the countersign log"})
			return
		}
		if err := s.b.Store().AddNotice(ctx, Notice{ApprovalID: rec.ID, Kind: slackWebhookNoticeKind}); err != nil {
			log.Error("store slack notice", zap.Error(err))
		}
		log.Info("approval posted to slack", zap.String("via", "webhook"))
		_ = s.b.Audit(&audit.Event{Type: "approval", ApprovalID: rec.ID, Via: "slack", Detail: "delivered to Slack through the incoming webhook"})
		return
	}

	channel := rec.Channel
	if channel == "" {
		channel = s.opts.Channel
	}
	var postedTo, ts string
	err := s.retry(ctx, "chat.postMessage", func(ctx context.Context) error {
		var err error
		postedTo, ts, err = s.api.PostMessageContext(ctx, channel,
			slack.MsgOptionText(text, false),
			slack.MsgOptionBlocks(blocks...),
			slack.MsgOptionDisableLinkUnfurl(),
			slack.MsgOptionDisableMediaUnfurl(),
		)
		return err
	})
	if err != nil {
		log.Error("slack notification failed", zap.String("via", "chat.postMessage"),
			zap.String("channel", channel), zap.Error(slackScrubError(err)))
		_ = s.b.Audit(&audit.Event{Type: "approval", ApprovalID: rec.ID, Via: "slack", Detail: "Slack delivery to " + channel + " failed; see the countersign log"})
		return
	}
	if postedTo == "" {
		postedTo = channel
	}
	// chat.update needs the channel ID Slack answered with, not a name.
	if err := s.b.Store().AddNotice(ctx, Notice{ApprovalID: rec.ID, Kind: slackNoticeKind, Channel: postedTo, Ref: ts}); err != nil {
		log.Error("store slack notice; the message will keep its buttons", zap.Error(err))
	}
	log.Info("approval posted to slack", zap.String("via", "chat.postMessage"), zap.String("channel", postedTo))
	_ = s.b.Audit(&audit.Event{Type: "approval", ApprovalID: rec.ID, Via: "slack", Detail: "delivered to Slack channel " + postedTo,
		Fields: map[string]any{"slack_ts": ts}})
}

// Target implements approval.Target: where a request is announced.
func (s *Slack) Target(rec *Record) string {
	if s.api == nil {
		return "slack (incoming webhook)"
	}
	if rec.Channel != "" {
		return "slack " + rec.Channel
	}
	return "slack " + s.opts.Channel
}

// postOutcome replaces the buttons of every message that announced rec with
// its outcome (bot mode) or posts the outcome as a follow-up (webhook).
func (s *Slack) postOutcome(ctx context.Context, rec *Record) {
	log := s.logger.With(zap.String("approval", rec.ID))
	notices, err := s.b.Store().Notices(ctx, rec.ID)
	if err != nil {
		log.Error("read slack notices", zap.Error(err))
		return
	}
	text, blocks := s.outcomeMessage(rec)
	for _, n := range notices {
		switch {
		case n.Kind == slackNoticeKind && s.api != nil && n.Ref != "":
			err := s.retry(ctx, "chat.update", func(ctx context.Context) error {
				_, _, _, err := s.api.UpdateMessageContext(ctx, n.Channel, n.Ref,
					slack.MsgOptionText(text, false),
					slack.MsgOptionBlocks(blocks...),
				)
				return err
			})
			if err != nil {
				log.Error("slack message update failed", zap.String("channel", n.Channel), zap.Error(slackScrubError(err)))
				continue
			}
			log.Info("slack message updated with the outcome", zap.String("channel", n.Channel), zap.Stringer("state", rec.State))
		case n.Kind == slackWebhookNoticeKind && s.api == nil:
			if err := s.retry(ctx, "webhook", func(ctx context.Context) error {
				return s.postWebhook(ctx, text, blocks)
			}); err != nil {
				log.Error("slack outcome post failed", zap.String("via", "webhook"), zap.Error(slackScrubError(err)))
				continue
			}
			log.Info("slack outcome posted", zap.String("via", "webhook"), zap.Stringer("state", rec.State))
		}
	}
}

func (s *Slack) postEphemeral(ctx context.Context, channel, user, text string) {
	if s.api == nil || channel == "" || user == "" {
		return
	}
	err := s.retry(ctx, "chat.postEphemeral", func(ctx context.Context) error {
		_, err := s.api.PostEphemeralContext(ctx, channel, user, slack.MsgOptionText(text, false))
		return err
	})
	if err != nil {
		s.logger.Warn("slack reply failed", zap.String("channel", channel), zap.Error(slackScrubError(err)))
	}
}

// postWebhook posts one message to the incoming webhook.
func (s *Slack) postWebhook(ctx context.Context, text string, blocks []slack.Block) error {
	off := false
	return slack.PostWebhookCustomHTTPContext(ctx, s.opts.WebhookURL, s.http, &slack.WebhookMessage{
		Text:        text,
		Blocks:      &slack.Blocks{BlockSet: blocks},
		UnfurlLinks: &off,
		UnfurlMedia: &off,
	})
}

// retry runs one Slack call with a deadline per attempt, and again after a
// 429 (waiting as long as Retry-After says), a 5xx or a network error, up to
// tune.attempts in all. Slack's own errors ("channel_not_found") are final.
func (s *Slack) retry(ctx context.Context, what string, call func(ctx context.Context) error) error {
	wait := s.tune.backoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, s.tune.timeout)
		err := call(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || attempt >= s.tune.attempts {
			return err
		}
		d, ok := s.retryDelay(err, wait)
		if !ok {
			return err
		}
		s.logger.Debug("slack call failed; retrying", zap.String("call", what), zap.Int("attempt", attempt),
			zap.Duration("wait", d), zap.Error(slackScrubError(err)))
		if err := s.tune.sleep(ctx, d); err != nil {
			return err
		}
		wait = min(2*wait, s.tune.maxBackoff)
	}
}

// retryDelay says whether err is worth another attempt and after how long.
func (s *Slack) retryDelay(err error, backoff time.Duration) (time.Duration, bool) {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		d := max(rl.RetryAfter, time.Second)
		if d > s.tune.maxRetryAfter {
			return 0, false
		}
		return d, true
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		if sc.Code >= 500 || sc.Code == http.StatusTooManyRequests {
			return backoff, true
		}
		return 0, false
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return backoff, true // no answer: refused, reset, timed out
	}
	return 0, false
}

func slackSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// slackScrubError drops the URL from transport errors: an incoming
// webhook's URL is a credential and must not reach the log.
func slackScrubError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// Interactive callbacks.

var (
	errSlackTimestamp = errors.New("timestamp missing or outside five minutes of now")
	// slackIDPattern matches Slack user, team and enterprise IDs.
	slackIDPattern = regexp.MustCompile(`^[A-Z0-9]{2,32}$`)
	// slackApprovalIDPattern matches the ids NewID makes.
	slackApprovalIDPattern = regexp.MustCompile(`^ap-[a-z2-9]{1,32}$`)
)

// InteractiveHandler serves POST /slack/interactive: the Approve and Deny
// buttons of bot-mode messages.
//
// A callback counts only with a valid X-Slack-Signature (v0 HMAC-SHA256
// over the raw body, compared in constant time) and a timestamp within five
// minutes of now; each signed callback is accepted once (its signature is
// remembered in the store), so a replay changes nothing. The approver is the
// immutable user ID and team ID from the payload, recorded as
// "slack:TEAM/USER" and checked against SlackOptions.Approvers.
//
// Rejected callbacks get 401 (bad signature or timestamp), 400 or 413, and
// 503 when the replay check cannot be made (nothing is decided then);
// everything else gets 200 within Slack's three seconds, including refusals
// (a user not on the approver list), which are answered with an ephemeral
// message. Messages are updated through Notify.
func (s *Slack) InteractiveHandler() http.Handler { return http.HandlerFunc(s.serveInteractive) }

func (s *Slack) serveInteractive(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if s.opts.SigningSecret == "" {
		// Without a secret no callback can be verified: accept none.
		s.logger.Warn("slack callback refused: approval.slack.signing_secret is not set")
		http.Error(w, "slack callbacks are not configured", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, slackBodyLimit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read request body", http.StatusBadRequest)
		return
	}
	now := s.opts.Now()
	key, err := s.verify(r.Header, body, now)
	if err != nil {
		s.logger.Warn("slack callback rejected", zap.String("reason", err.Error()), zap.String("remote", r.RemoteAddr))
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	ctx := r.Context()
	fresh, err := s.b.Store().FirstSeen(ctx, key, now.Add(slackReplayTTL), now)
	if err != nil {
		// Fail closed: without replay protection nothing is decided.
		s.logger.Error("slack callback: replay check failed; nothing decided", zap.Error(err))
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	if !fresh {
		s.logger.Warn("slack callback replayed; ignored", zap.String("remote", r.RemoteAddr))
		w.WriteHeader(http.StatusOK)
		return
	}
	ic, err := parseSlackPayload(body)
	if err != nil {
		s.logger.Warn("slack callback: malformed payload", zap.Error(err))
		http.Error(w, "malformed payload", http.StatusBadRequest)
		return
	}
	s.handleCallback(ctx, ic)
	w.WriteHeader(http.StatusOK)
}

// verify checks the callback's timestamp against the injected clock and its
// signature, and returns the replay key: the signature's canonical form (hex
// accepts either case, so the header text itself would not do).
func (s *Slack) verify(h http.Header, body []byte, now time.Time) (string, error) {
	ts, err := strconv.ParseInt(h.Get("X-Slack-Request-Timestamp"), 10, 64)
	if err != nil {
		return "", errSlackTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); d > slackMaxSkew || d < -slackMaxSkew {
		return "", errSlackTimestamp
	}
	// slack-go also checks the timestamp, against the wall clock.
	sv, err := slack.NewSecretsVerifier(h, s.opts.SigningSecret)
	if err != nil {
		return "", err
	}
	if _, err := sv.Write(body); err != nil {
		return "", err
	}
	if err := sv.Ensure(); err != nil {
		return "", err
	}
	sig, err := hex.DecodeString(strings.TrimPrefix(h.Get("X-Slack-Signature"), "v0="))
	if err != nil {
		return "", err
	}
	return "slack-callback:" + hex.EncodeToString(sig), nil
}

// parseSlackPayload decodes the form body's payload field.
func parseSlackPayload(body []byte) (slack.InteractionCallback, error) {
	var ic slack.InteractionCallback
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return ic, fmt.Errorf("parse form: %w", err)
	}
	payload := form.Get("payload")
	if payload == "" {
		return ic, errors.New("no payload")
	}
	if err := json.Unmarshal([]byte(payload), &ic); err != nil {
		return ic, fmt.Errorf("decode payload: %w", err)
	}
	return ic, nil
}

// handleCallback applies a verified, first-seen callback.
func (s *Slack) handleCallback(ctx context.Context, ic slack.InteractionCallback) {
	if ic.Type != slack.InteractionTypeBlockActions {
		s.logger.Debug("slack callback ignored", zap.String("type", string(ic.Type)))
		return
	}
	var act *slack.BlockAction
	for _, a := range ic.ActionCallback.BlockActions {
		if a != nil && (a.ActionID == slackActionApprove || a.ActionID == slackActionDeny) {
			act = a
			break
		}
	}
	if act == nil {
		return // the "Review request" link button, or anything else
	}
	user, team := ic.User.ID, ic.Team.ID
	if team == "" {
		team = ic.User.TeamID
	}
	channel := ic.Channel.ID
	if channel == "" {
		channel = ic.Container.ChannelID
	}
	reply := func(text string) {
		s.enqueue(slackJob{kind: slackJobEphemeral, ctx: context.WithoutCancel(ctx), channel: channel, user: user, text: text})
	}
	if !slackIDPattern.MatchString(user) || !slackIDPattern.MatchString(team) {
		s.logger.Warn("slack callback without a valid user or team ID; nothing decided")
		return
	}
	id := act.Value
	log := s.logger.With(zap.String("user", user), zap.String("team", team))
	if !slackApprovalIDPattern.MatchString(id) {
		log.Warn("slack callback names no approval; nothing decided")
		return
	}
	log = log.With(zap.String("approval", id))
	if len(s.approvers) > 0 && !s.approvers[user] {
		log.Warn("slack user is not an approver; nothing decided")
		reply(fmt.Sprintf("You are not on countersign's approver list (approval.approvers), so nothing was decided on %s.", id))
		return
	}
	approve := act.ActionID == slackActionApprove
	// One person, one approver: Slack user IDs are unique across
	// workspaces, and one user can reach a shared channel from two.
	d := Decision{Approve: approve, Approver: "slack:" + team + "/" + user, Identity: "slack:" + user, Via: "slack"}
	if !approve {
		d.Reason = slackDenyReason
	}
	rec, err := s.b.Decide(ctx, id, d)
	switch {
	case err == nil:
		log.Info("approval decided in slack", zap.Bool("approve", approve), zap.Stringer("state", rec.State))
		if rec.State == StatePending {
			reply(fmt.Sprintf("Your approval of %s is recorded (%d of %d); another approver must approve too.",
				id, len(rec.Approvers()), rec.Required))
		}
	case errors.Is(err, ErrOperatorUnknown):
		reply(fmt.Sprintf("%s was approved with countersign's admin token, which does not say who holds it, so your approval cannot count as the second person's: another approver must approve, or the operator must set approval.operator to their Slack user ID. Nothing was decided.", id))
	case errors.Is(err, ErrDuplicateApprover):
		reply(fmt.Sprintf("You have already approved %s; another person must approve.", id))
	case errors.Is(err, ErrDecided), errors.Is(err, ErrExpired):
		state := "expired"
		if cur, gerr := s.b.Get(ctx, id); gerr == nil {
			state = cur.State.String()
			// The message still shows buttons: show the outcome instead.
			s.enqueue(slackJob{kind: slackJobDecided, ctx: context.WithoutCancel(ctx), rec: cur})
		}
		reply(fmt.Sprintf("%s is already %s; nothing changed.", id, state))
	case errors.Is(err, ErrNotFound):
		log.Warn("slack callback for an unknown approval; nothing decided")
		reply(fmt.Sprintf("countersign does not know %s; nothing was decided.", id))
	default:
		log.Error("slack decision not recorded", zap.Error(err))
		reply(fmt.Sprintf("countersign could not record your decision on %s; nothing was decided. Try the approval page or `countersign approvals`.", id))
	}
}

// Messages. Every string that an agent (or a session owner) can influence
// goes through slackValue: credentials redacted, control and format
// characters removed, backticks replaced, cut to a length, and & < >
// escaped, so that "<!channel>" or "<https://evil|Approve>" shows as text.
// Agent strings never appear inside a link, and text objects are verbatim,
// so Slack does not turn URLs or names in them into links or mentions.

// slackValue sanitises one agent-controlled value for mrkdwn.
func slackValue(s string, limit int) string {
	s = redact.Text(strings.ToValidUTF8(s, "\uFFFD"))
	var b strings.Builder
	var ink inkFilter
	for _, r := range s {
		switch {
		case r == '`':
			b.WriteRune('ˋ') // a backtick would end the code span around the value
			ink.hides(r)
		case r == '\n' || r == '\r' || r == '\t':
			b.WriteByte(' ')
			ink.hides(r)
		case ink.hides(r):
			// Bidi overrides, zero-width characters, smuggled variation
			// selectors: named, as on the page, so the approver sees
			// that something is there.
			fmt.Fprintf(&b, "<U+%04X>", r)
		default:
			b.WriteRune(r)
		}
	}
	return slackEscapeCut(b.String(), limit)
}

// slackEscapeCut escapes & < > and cuts the escaped text to limit runes,
// never inside an entity: the limit bounds what the message shows, so a
// value of "&&&…" cannot grow five times past it and push the rest of the
// message out.
func slackEscapeCut(s string, limit int) string {
	width := func(r rune) int {
		switch r {
		case '&':
			return len("&amp;")
		case '<', '>':
			return len("&lt;")
		}
		return 1
	}
	total := 0
	for _, r := range s {
		total += width(r)
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if total > limit && n+width(r) > limit-1 {
			b.WriteString("…")
			break
		}
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		default:
			b.WriteRune(r)
		}
		n += width(r)
	}
	return b.String()
}

// slackCode is a value shown as inline code.
func slackCode(s string, limit int) string {
	v := slackValue(s, limit)
	if strings.TrimSpace(v) == "" {
		return "(none)"
	}
	return "`" + v + "`"
}

func slackTruncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for range n - 1 {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i] + "…"
}

// slackClamp cuts escaped text to n runes without splitting an entity.
func slackClamp(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	s = slackTruncate(s, n)
	s = strings.TrimSuffix(s, "…")
	if i := strings.LastIndexByte(s, '&'); i >= 0 && !strings.Contains(s[i:], ";") {
		s = s[:i]
	}
	return s + "…"
}

func slackMrkdwn(text string, limit int) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, slackClamp(text, limit), false, true)
}

func slackPlain(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, text, true, false)
}

// slackActionString returns a string member of the record's action.
func slackActionString(rec *Record, key string) string {
	v, _ := rec.Action[key].(string)
	return v
}

// slackOperation names what the agent wants to do: "ec2:TerminateInstances".
func slackOperation(rec *Record) string {
	op := slackActionString(rec, "operation")
	if svc := slackActionString(rec, "service"); svc != "" && op != "" {
		return svc + ":" + op
	}
	if op != "" {
		return op
	}
	if rec.Operation != "" {
		return rec.Operation
	}
	return rec.Request.Method
}

// slackSummary is the sentence of SPEC section 1: agent session `alice/claude`
// wants to run `ec2:TerminateInstances` on `i-0abc` in account `prod`
// (`us-east-1`).
func slackSummary(rec *Record) string {
	var b strings.Builder
	b.WriteString("Agent session ")
	b.WriteString(slackCode(rec.SessionName, slackSessionLimit))
	b.WriteString(" wants to run ")
	b.WriteString(slackCode(slackOperation(rec), slackValueLimit))
	if len(rec.Resources) > 0 {
		b.WriteString(" on ")
		b.WriteString(slackList(rec.Resources, slackMaxResources, ", ", " and %d more", func(r string) string { return slackCode(r, slackValueLimit) }))
	}
	acct, region := slackActionString(rec, "account"), slackActionString(rec, "region")
	switch {
	case acct != "" && region != "":
		b.WriteString(" in account " + slackCode(acct, 64) + " (" + slackCode(region, 64) + ")")
	case acct != "":
		b.WriteString(" in account " + slackCode(acct, 64))
	case region != "":
		b.WriteString(" in " + slackCode(region, 64))
	}
	b.WriteString(".")
	return b.String()
}

// slackReason is the policy's reasons, in a section of their own so that
// nothing the agent chose can push them out of the message.
func slackReason(rec *Record) string {
	if len(rec.Messages) == 0 {
		return ""
	}
	return "*Reason:* " + slackList(rec.Messages, slackMaxMessages, "; ", " (and %d more)", func(m string) string { return slackValue(m, slackMessageLimit) })
}

// slackList renders up to max items, joined by sep, and says how many more
// there are with more (a format taking the count).
func slackList(items []string, max int, sep, more string, render func(string) string) string {
	var b strings.Builder
	for i, it := range items {
		if i == max {
			fmt.Fprintf(&b, more, len(items)-i)
			break
		}
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(render(it))
	}
	return b.String()
}

// slackDetail says what the request carries, as the approval page does:
// a push's ref updates with deletions first and counted, or the start of
// the body (an MCP tool's arguments, a JSON document). When the excerpt
// stops short, it says so: the whole request is on the page.
func slackDetail(rec *Record) string {
	text := slackBody(rec)
	// The request line is cut at slackURLLimit (slackFields): what matters
	// may come after, in a query the agent padded (found by review).
	if strings.HasSuffix(slackValue(rec.Request.Method+" "+rec.Request.URL, slackURLLimit), "…") {
		if text != "" {
			text += "\n"
		}
		text += "_The URL is cut short below: open the approval page to see all of it before you approve._"
	}
	return text
}

// slackBody is what slackDetail says of the body.
func slackBody(rec *Record) string {
	if str(rec.Action, "provider") == "git" {
		if p := describeGit(rec.Action); len(p) > 0 {
			return "*Changes:* " + slackPhrase(p)
		}
	}
	body := rec.Request.Body
	if strings.TrimSpace(body) == "" {
		return ""
	}
	excerpt := slackValue(body, slackExcerptLimit)
	text := "*Body:* " + "`" + excerpt + "`"
	if strings.HasSuffix(excerpt, "…") || (rec.Request.BodySize > 0 && int64(len(body)) < rec.Request.BodySize) {
		text += "\n_The body is cut short here: open the approval page to see all of it before you approve._"
	}
	return text
}

// slackPhrase renders a page phrase as mrkdwn: its code parts as inline
// code, its text as escaped text.
func slackPhrase(p phrase) string {
	var b strings.Builder
	for _, pt := range p {
		if pt.Code {
			b.WriteString(slackCode(pt.Text, slackValueLimit))
		} else {
			b.WriteString(slackValue(pt.Text, slackValueLimit))
		}
	}
	return b.String()
}

func slackDate(t time.Time) string {
	u := t.UTC()
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", u.Unix(), u.Format("2006-01-02 15:04 UTC"))
}

// slackFields are the request details shown under the summary.
func slackFields(rec *Record) []*slack.TextBlockObject {
	fields := []*slack.TextBlockObject{
		slackMrkdwn("*Request*\n"+slackCode(rec.Request.Method+" "+rec.Request.URL, slackURLLimit), slackFieldLimit),
		slackMrkdwn("*Approvals needed*\n"+strconv.Itoa(max(rec.Required, 1)), slackFieldLimit),
	}
	if !rec.Expires.IsZero() {
		fields = append(fields, slackMrkdwn("*Expires*\n"+slackDate(rec.Expires), slackFieldLimit))
	}
	if len(rec.RuleIDs) > 0 {
		var rules []string
		for i, r := range rec.RuleIDs {
			if i == slackMaxRules {
				rules = append(rules, fmt.Sprintf("and %d more", len(rec.RuleIDs)-i))
				break
			}
			rules = append(rules, slackCode(r, 100))
		}
		fields = append(fields, slackMrkdwn("*Policy rule*\n"+strings.Join(rules, ", "), slackFieldLimit))
	}
	return fields
}

func slackContext(rec *Record) slack.Block {
	text := "Approval " + slackCode(rec.ID, 40)
	if rec.RequestID != "" {
		text += " · request " + slackCode(rec.RequestID, 64)
	}
	return slack.NewContextBlock("", slackMrkdwn(text, slackTextLimit))
}

// slackLink returns link if it is safe to embed in mrkdwn or a button: our
// own approval page URL, http(s), nothing that would end the link markup.
func slackLink(link string) (string, bool) {
	if link == "" || len(link) > 2000 || strings.ContainsAny(link, "|<> \t\r\n") {
		return "", false
	}
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", false
	}
	return link, true
}

// fallbackText is the notification text (shown where blocks are not).
func slackFallback(verb string, rec *Record) string {
	t := fmt.Sprintf("%s: session %s, %s (%s)", verb,
		slackValue(rec.SessionName, slackSessionLimit), slackValue(slackOperation(rec), slackValueLimit), slackValue(rec.ID, 40))
	return slackClamp(t, slackFallbackMax)
}

// requestMessage is the announcement of a pending approval: with Approve
// and Deny buttons in bot mode, with the page link in both modes.
func (s *Slack) requestMessage(rec *Record, link string) (string, []slack.Block) {
	blocks := []slack.Block{
		slack.NewHeaderBlock(slackPlain(":raised_hand: Approval needed")),
		slack.NewSectionBlock(slackMrkdwn(slackSummary(rec), slackTextLimit), nil, nil),
	}
	for _, text := range []string{slackReason(rec), slackDetail(rec)} {
		if text != "" {
			blocks = append(blocks, slack.NewSectionBlock(slackMrkdwn(text, slackTextLimit), nil, nil))
		}
	}
	blocks = append(blocks, slack.NewSectionBlock(nil, slackFields(rec), nil))
	link, hasLink := slackLink(link)
	cli := "`countersign approvals approve " + slackValue(rec.ID, 40) + "`"
	switch {
	case s.api != nil:
		approve := slack.NewButtonBlockElement(slackActionApprove, rec.ID, slackPlain("Approve")).
			WithStyle(slack.StylePrimary).
			WithConfirm(slack.NewConfirmationBlockObject(
				slackPlain("Approve this request?"),
				slackPlain("countersign will send the held request to its destination."),
				slackPlain("Approve"), slackPlain("Cancel")))
		deny := slack.NewButtonBlockElement(slackActionDeny, rec.ID, slackPlain("Deny")).WithStyle(slack.StyleDanger)
		elems := []slack.BlockElement{approve, deny}
		if hasLink {
			elems = append(elems, slack.NewButtonBlockElement(slackActionReview, "", slackPlain("Review request")).WithURL(link))
		}
		blocks = append(blocks, slack.NewActionBlock(slackBlockActions, elems...))
	case hasLink:
		blocks = append(blocks, slack.NewSectionBlock(slackMrkdwn(
			"*<"+slackutilsx.EscapeMessage(link)+"|Review the request>* to see exactly what would be sent, or run "+cli+".",
			slackTextLimit), nil, nil))
	default:
		blocks = append(blocks, slack.NewSectionBlock(slackMrkdwn("Decide with "+cli+" or `countersign approvals deny`.", slackTextLimit), nil, nil))
	}
	blocks = append(blocks, slackContext(rec))
	return slackFallback("Approval needed", rec), blocks
}

// outcomeMessage shows how an approval ended, without buttons.
func (s *Slack) outcomeMessage(rec *Record) (string, []slack.Block) {
	var header, verb string
	switch rec.State {
	case StateApproved:
		header, verb = ":white_check_mark: Approved", "Approved"
	case StateDenied:
		header, verb = ":no_entry: Denied", "Denied"
	case StateExpired:
		header, verb = ":hourglass: Expired", "Expired"
	default:
		header, verb = ":raised_hand: Approval pending", "Pending"
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(slackPlain(header)),
		slack.NewSectionBlock(slackMrkdwn(slackSummary(rec), slackTextLimit), nil, nil),
	}
	if reason := slackReason(rec); reason != "" {
		blocks = append(blocks, slack.NewSectionBlock(slackMrkdwn(reason, slackTextLimit), nil, nil))
	}
	blocks = append(blocks,
		slack.NewSectionBlock(slackMrkdwn(slackOutcome(rec), slackTextLimit), nil, nil),
		slackContext(rec))
	return slackFallback(verb, rec), blocks
}

// slackOutcome is the line that replaces the buttons: "Approved by <@U123>
// via slack", "Denied by … via page: reason", "Expired: nobody decided".
func slackOutcome(rec *Record) string {
	switch rec.State {
	case StateApproved:
		var who []string
		for _, d := range rec.Decisions {
			if d.Approve {
				who = append(who, slackApprover(d.Approver)+" "+slackVia(d.Via))
			}
		}
		scope := rec.AgreedScope()
		line := "*Approved* by " + strings.Join(who, ", ")
		if scope > 0 {
			line += fmt.Sprintf(", with a scoped grant for %s (the same operation on the same resources, this session only)", scope)
		}
		return line + "."
	case StateDenied:
		for _, d := range rec.Decisions {
			if !d.Approve {
				line := "*Denied* by " + slackApprover(d.Approver) + " " + slackVia(d.Via)
				if d.Reason != "" && (d.Via != "slack" || d.Reason != slackDenyReason) {
					line += ": " + slackValue(d.Reason, slackMessageLimit)
				}
				return line + "."
			}
		}
		return "*Denied*."
	case StateExpired:
		return "*Expired*: nobody decided in time. Nothing was sent."
	default:
		return fmt.Sprintf("*Pending*: %d of %d approvals.", len(rec.Approvers()), max(rec.Required, 1))
	}
}

// slackVia says where a decision was made.
func slackVia(via string) string {
	switch via {
	case "slack":
		return "in Slack"
	case "page":
		return "on the approval page"
	case "cli":
		return "with the CLI"
	default:
		return "via " + slackCode(via, 20)
	}
}

// slackApprover shows an approver: a Slack identity as a mention of its
// user ID, anything else as text.
func slackApprover(a string) string {
	if rest, ok := strings.CutPrefix(a, "slack:"); ok {
		if team, user, ok := strings.Cut(rest, "/"); ok && slackIDPattern.MatchString(team) && slackIDPattern.MatchString(user) {
			return "<@" + user + ">"
		}
	}
	return slackCode(a, 100)
}
