package approval

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"
)

// DecisionRequest is the body of POST /api/v1/approvals/{id}/decision.
type DecisionRequest struct {
	Decision string `json:"decision"` // approve or deny
	Reason   string `json:"reason,omitempty"`
	Approver string `json:"approver"`
}

// NewAdminHandler serves the admin API used by `countersign approvals`:
//
//	GET  /api/v1/approvals[?pending=1]
//	GET  /api/v1/approvals/{id}
//	POST /api/v1/approvals/{id}/decision   {"decision": "approve"|"deny", "reason": "...", "approver": "..."}
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
	if recs == nil {
		recs = []*Record{}
	}
	writeJSON(w, http.StatusOK, recs)
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
	rec, err := a.b.Decide(r.Context(), r.PathValue("id"), Decision{
		Approve: approve, Approver: "cli:" + req.Approver, Via: "cli", Reason: req.Reason,
	})
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "no approval "+r.PathValue("id"))
	case errors.Is(err, ErrDecided), errors.Is(err, ErrExpired), errors.Is(err, ErrDuplicateApprover):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		a.logger.Error("decide approval", zap.Error(err))
		writeError(w, http.StatusInternalServerError, "could not record the decision")
	default:
		writeJSON(w, http.StatusOK, rec)
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
