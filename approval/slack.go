package approval

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// SlackOptions configures Slack notifications and callbacks.
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
	HTTP   *http.Client
	Now    func() time.Time
}

// Slack posts approval requests to Slack and handles its interactive
// callbacks.
type Slack struct {
	opts   SlackOptions
	b      *Broker
	logger *zap.Logger
}

// NewSlack returns a Slack notifier bound to a broker.
func NewSlack(opts SlackOptions, b *Broker, logger *zap.Logger) (*Slack, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Slack{opts: opts, b: b, logger: logger.Named("slack")}, nil
}

// Notify implements Notifier.
func (s *Slack) Notify(ctx context.Context, n Notification) {}

// InteractiveHandler serves POST /slack/interactive.
func (s *Slack) InteractiveHandler() http.Handler { return http.NotFoundHandler() }

// Close waits for deliveries in flight.
func (s *Slack) Close() {}
