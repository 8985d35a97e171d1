package approval

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to the admin API of a running countersign.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// NewClient returns a client for baseURL that never goes through a proxy:
// the admin API is local, and countersign refuses to proxy to itself.
func NewClient(baseURL, token string) *Client {
	return &Client{
		BaseURL: strings.TrimRight(baseURL, "/"),
		Token:   token,
		HTTP: &http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{Proxy: nil},
		},
	}
}

// List returns approvals, newest first.
func (c *Client) List(ctx context.Context, pendingOnly bool) ([]*Record, error) {
	path := "/api/v1/approvals"
	if pendingOnly {
		path += "?pending=1"
	}
	var out []*Record
	// Not "return out, c.do(…, &out)": Go leaves unspecified whether out is
	// read before or after the call fills it.
	if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Get returns one approval.
func (c *Client) Get(ctx context.Context, id string) (*Record, error) {
	var out Record
	if err := c.do(ctx, http.MethodGet, "/api/v1/approvals/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Decide approves or denies one approval.
func (c *Client) Decide(ctx context.Context, id string, approve bool, approver, reason string) (*Record, error) {
	return c.DecideScoped(ctx, id, approve, approver, reason, 0)
}

// DecideScoped is Decide; an approval with scope > 0 also becomes a scoped
// grant for that long.
func (c *Client) DecideScoped(ctx context.Context, id string, approve bool, approver, reason string, scope time.Duration) (*Record, error) {
	d := DecisionRequest{Decision: "deny", Approver: approver, Reason: reason}
	if scope > 0 {
		d.ScopeFor = scope.String()
	}
	if approve {
		d.Decision = "approve"
	}
	var out Record
	if err := c.do(ctx, http.MethodPost, "/api/v1/approvals/"+url.PathEscape(id)+"/decision", d, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Link mints a fresh single-use approval page link.
func (c *Client) Link(ctx context.Context, id string) (string, error) {
	var out struct {
		Link string `json:"link"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/approvals/"+url.PathEscape(id)+"/link", struct{}{}, &out); err != nil {
		return "", err
	}
	return out.Link, nil
}

// Grants lists scoped grants.
func (c *Client) Grants(ctx context.Context, activeOnly bool) ([]Scope, error) {
	path := "/api/v1/grants"
	if activeOnly {
		path += "?active=1"
	}
	var out []Scope
	if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Revoke revokes a scoped grant.
func (c *Client) Revoke(ctx context.Context, id, approver string) (Scope, error) {
	var out Scope
	err := c.do(ctx, http.MethodPost, "/api/v1/grants/"+url.PathEscape(id)+"/revoke", map[string]string{"approver": approver}, &out)
	return out, err
}

// APIError is an error answer from the admin API.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status) }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, c.BaseURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read answer from %s: %w", c.BaseURL, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode answer from %s: %w", c.BaseURL, err)
	}
	return nil
}
