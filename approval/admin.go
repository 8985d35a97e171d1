package approval

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

// DecisionRequest is the body of POST /api/v1/approvals/{id}/decision.
type DecisionRequest struct {
	Decision string `json:"decision"` // approve or deny
	Reason   string `json:"reason,omitempty"`
	Approver string `json:"approver"`
	// ScopeFor ("30m") widens an approval into a scoped grant.
	ScopeFor string `json:"scope_for,omitempty"`
}

// NewAdminHandler serves the admin API used by `countersign approvals`:
//
//	GET  /api/v1/approvals[?pending=1]
//	GET  /api/v1/approvals/{id}
//	POST /api/v1/approvals/{id}/decision   {"decision": "approve"|"deny", "reason": "...", "approver": "...", "scope_for": "30m"}
//	POST /api/v1/approvals/{id}/link       a fresh single-use page link (for a second approver)
//	GET  /api/v1/grants[?active=1]          scoped grants
//	POST /api/v1/grants/{id}/revoke        {"approver": "..."}
//
// Every call needs "Authorization: Bearer <admin token>".
func NewAdminHandler(b *Broker, token string, logger *zap.Logger) http.Handler {
	if logger == nil {
		logger = zap.NewNop()
	}
	a := &admin{b: b, token: token, logger: logger.Named("admin")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/approvals", a.list)
	mux.HandleFunc("GET /api/v1/approvals/{id}", a.get)
	mux.HandleFunc("POST /api/v1/approvals/{id}/decision", a.decide)
	mux.HandleFunc("POST /api/v1/approvals/{id}/link", a.link)
	mux.HandleFunc("GET /api/v1/grants", a.grants)
	mux.HandleFunc("POST /api/v1/grants/{id}/revoke", a.revoke)
	return a.authenticate(mux)
}

type admin struct {
	b      *Broker
	token  string
	logger *zap.Logger
}

func (a *admin) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || a.token == "" || !tokenEqual(tok, a.token) {
			writeError(w, http.StatusUnauthorized, "admin token missing or wrong: the token is in <state_dir>/admin-token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *admin) list(w http.ResponseWriter, r *http.Request) {
	recs, err := a.b.List(r.Context(), r.URL.Query().Get("pending") == "1")
	if err != nil {
		a.logger.Error("list approvals", zap.Error(err))
		writeError(w, http.StatusInternalServerError, "could not list approvals")
		return
	}
	out := make([]*Record, 0, len(recs))
	for _, rec := range recs {
		out = append(out, listed(rec))
	}
	writeJSON(w, http.StatusOK, out)
}

// listBodyLimit is how much of each request's body a list shows: a held
// body is shown whole by `approvals show` and the page, and may be as
// large as inspect.body_limit, so a list of them would outgrow what
// clients read (found by review).
const listBodyLimit = 4 << 10

// listed is rec as a list shows it: its body cut to listBodyLimit.
func listed(rec *Record) *Record {
	if len(rec.Request.Body) <= listBodyLimit {
		return rec
	}
	c := *rec
	cut := listBodyLimit
	for cut > 0 && !utf8.RuneStart(c.Request.Body[cut]) {
		cut--
	}
	c.Request.Body = c.Request.Body[:cut] + fmt.Sprintf("… (%d more bytes: countersign approvals show %s)", len(rec.Request.Body)-cut, rec.ID)
	return &c
}

func (a *admin) get(w http.ResponseWriter, r *http.Request) {
	rec, err := a.b.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "no approval "+r.PathValue("id"))
		return
	}
	if err != nil {
		a.logger.Error("get approval", zap.Error(err))
		writeError(w, http.StatusInternalServerError, "could not read the approval")
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (a *admin) decide(w http.ResponseWriter, r *http.Request) {
	var req DecisionRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "body must be JSON {\"decision\": \"approve\"|\"deny\", \"reason\": \"...\", \"approver\": \"...\"}")
		return
	}
	var approve bool
	switch req.Decision {
	case "approve":
		approve = true
	case "deny":
	default:
		writeError(w, http.StatusBadRequest, "decision must be approve or deny")
		return
	}
	if strings.TrimSpace(req.Approver) == "" {
		writeError(w, http.StatusBadRequest, "approver is required")
		return
	}
	var scope time.Duration
	if req.ScopeFor != "" {
		d, err := time.ParseDuration(req.ScopeFor)
		if err != nil || d <= 0 || !approve {
			writeError(w, http.StatusBadRequest, "scope_for must be a positive duration such as \"30m\", with decision approve")
			return
		}
		scope = d
	}
	rec, err := a.b.Decide(r.Context(), r.PathValue("id"), Decision{
		Approve: approve, Approver: "cli:" + req.Approver, Via: "cli", Reason: req.Reason, ScopeFor: scope,
		// Whoever holds the admin token is one approver, whatever name
		// they give.
		Identity: a.b.opts.operatorIdentity(),
	})
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "no approval "+r.PathValue("id"))
	case errors.Is(err, ErrScopeTooLong):
		writeError(w, http.StatusBadRequest, err.Error()+"; ask for a shorter scope_for")
	case errors.Is(err, ErrDecided), errors.Is(err, ErrExpired), errors.Is(err, ErrDuplicateApprover):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		a.logger.Error("decide approval", zap.Error(err))
		writeError(w, http.StatusInternalServerError, "could not record the decision")
	default:
		writeJSON(w, http.StatusOK, rec)
	}
}

func (a *admin) link(w http.ResponseWriter, r *http.Request) {
	link, err := a.b.NewLink(r.Context(), r.PathValue("id"), "cli")
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "no approval "+r.PathValue("id"))
	case errors.Is(err, ErrDecided):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeJSON(w, http.StatusOK, map[string]string{"link": link})
	}
}

func (a *admin) grants(w http.ResponseWriter, r *http.Request) {
	scopes, err := a.b.Scopes(r.Context(), r.URL.Query().Get("active") == "1")
	if err != nil {
		a.logger.Error("list grants", zap.Error(err))
		writeError(w, http.StatusInternalServerError, "could not list grants")
		return
	}
	if scopes == nil {
		scopes = []Scope{}
	}
	writeJSON(w, http.StatusOK, scopes)
}

func (a *admin) revoke(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Approver string `json:"approver"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || strings.TrimSpace(req.Approver) == "" {
		writeError(w, http.StatusBadRequest, "body must be JSON {\"approver\": \"...\"}")
		return
	}
	sc, err := a.b.RevokeScope(r.Context(), r.PathValue("id"), "cli:"+req.Approver)
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "no grant "+r.PathValue("id"))
	case err != nil:
		a.logger.Error("revoke grant", zap.Error(err))
		writeError(w, http.StatusInternalServerError, "could not revoke the grant")
	default:
		writeJSON(w, http.StatusOK, sc)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
