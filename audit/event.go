package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
)

// Event is one audit record's content. Zero fields are omitted from the
// record. Callers redact credentials before they build an Event: the audit
// log writes what it is given.
//
// The JSON tags name the keys the writer produces, so a record read back with
// encoding/json (see [ParseRecord]) fills the same fields.
type Event struct {
	// Type is the record's "event" member: "request", "decision",
	// "approval", "forward", "response", "session", "recovered", "policy"…
	// It is required.
	Type      string          `json:"event"`
	RequestID string          `json:"request_id,omitempty"`
	Session   *SessionRef     `json:"session,omitempty"`
	Request   *RequestSummary `json:"request,omitempty"`
	// Action is the classified action as the policy saw it.
	Action map[string]any `json:"action,omitempty"`
	// Input is the full policy input, recorded so that `policy replay` can
	// re-decide the request.
	Input          map[string]any `json:"input,omitempty"`
	Decision       string         `json:"decision,omitempty"` // "allow", "deny", "approve", "would_deny", …
	Reasons        []string       `json:"reasons,omitempty"`
	RuleIDs        []string       `json:"rule_ids,omitempty"`
	PolicyRevision string         `json:"policy_revision,omitempty"`
	EvalMicros     int64          `json:"eval_us,omitempty"`
	ApprovalID     string         `json:"approval_id,omitempty"`
	Approver       string         `json:"approver,omitempty"`
	Via            string         `json:"via,omitempty"`    // "cli", "slack", "page", …
	Detail         string         `json:"detail,omitempty"` // free text: "approved", "expired", …
	UpstreamStatus int            `json:"upstream_status,omitempty"`
	UpstreamMillis int64          `json:"upstream_ms,omitempty"`
	// Error is a safe, internal description of a failure.
	Error string `json:"error,omitempty"`
	// Fields holds anything else (session summary counts, …). It is written
	// as the nested object "fields", so its keys never collide with the
	// members above or with seq, ts, prev and hash.
	Fields map[string]any `json:"fields,omitempty"`
}

// SessionRef identifies the agent session a record belongs to.
type SessionRef struct {
	ID      string            `json:"id,omitempty"`
	Name    string            `json:"name,omitempty"`
	User    string            `json:"user,omitempty"`
	Command string            `json:"command,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// RequestSummary describes a request, already redacted by the caller.
type RequestSummary struct {
	Method        string              `json:"method,omitempty"`
	URL           string              `json:"url,omitempty"`
	Host          string              `json:"host,omitempty"`
	Port          int                 `json:"port,omitempty"`
	Headers       map[string][]string `json:"headers,omitempty"`
	BodySize      int64               `json:"body_size,omitempty"`
	BodySHA256    string              `json:"body_sha256,omitempty"`
	BodyTruncated bool                `json:"body_truncated,omitempty"`
	Tunnel        bool                `json:"tunnel,omitempty"`
}

// Record is one audit line read back: the chain members around the Event.
type Record struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"ts"`
	Event
	Prev string `json:"prev"`
	Hash string `json:"hash"`
}

// maxDepth bounds the nesting of Action, Input and Fields values. JSON-shaped
// values never come close; the bound turns a cyclic map into a marker instead
// of a stack overflow.
const maxDepth = 64

// eventFields writes an Event's members, in a fixed order, after the "event"
// member that zap writes from the entry's message.
type eventFields struct{ ev *Event }

func (e eventFields) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	ev := e.ev
	addString(enc, "request_id", ev.RequestID)
	if s := ev.Session; s != nil {
		_ = enc.AddObject("session", sessionFields{s})
	}
	if r := ev.Request; r != nil {
		_ = enc.AddObject("request", requestFields{r})
	}
	addMap(enc, "action", ev.Action)
	addMap(enc, "input", ev.Input)
	addString(enc, "decision", ev.Decision)
	addStrings(enc, "reasons", ev.Reasons)
	addStrings(enc, "rule_ids", ev.RuleIDs)
	addString(enc, "policy_revision", ev.PolicyRevision)
	addInt(enc, "eval_us", ev.EvalMicros)
	addString(enc, "approval_id", ev.ApprovalID)
	addString(enc, "approver", ev.Approver)
	addString(enc, "via", ev.Via)
	addString(enc, "detail", ev.Detail)
	addInt(enc, "upstream_status", int64(ev.UpstreamStatus))
	addInt(enc, "upstream_ms", ev.UpstreamMillis)
	addString(enc, "error", ev.Error)
	addMap(enc, "fields", ev.Fields)
	return nil
}

type sessionFields struct{ s *SessionRef }

func (f sessionFields) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	addString(enc, "id", f.s.ID)
	addString(enc, "name", f.s.Name)
	addString(enc, "user", f.s.User)
	addString(enc, "command", f.s.Command)
	if len(f.s.Labels) > 0 {
		_ = enc.AddObject("labels", stringMap(f.s.Labels))
	}
	return nil
}

type requestFields struct{ r *RequestSummary }

func (f requestFields) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	r := f.r
	addString(enc, "method", r.Method)
	addString(enc, "url", r.URL)
	addString(enc, "host", r.Host)
	addInt(enc, "port", int64(r.Port))
	if len(r.Headers) > 0 {
		_ = enc.AddObject("headers", headerMap(r.Headers))
	}
	addInt(enc, "body_size", r.BodySize)
	addString(enc, "body_sha256", r.BodySHA256)
	if r.BodyTruncated {
		enc.AddBool("body_truncated", true)
	}
	if r.Tunnel {
		enc.AddBool("tunnel", true)
	}
	return nil
}

func addString(enc zapcore.ObjectEncoder, k, v string) {
	if v != "" {
		enc.AddString(k, v)
	}
}

func addInt(enc zapcore.ObjectEncoder, k string, v int64) {
	if v != 0 {
		enc.AddInt64(k, v)
	}
}

func addStrings(enc zapcore.ObjectEncoder, k string, v []string) {
	if len(v) > 0 {
		_ = enc.AddArray(k, stringArray(v))
	}
}

func addMap(enc zapcore.ObjectEncoder, k string, m map[string]any) {
	if len(m) > 0 {
		_ = enc.AddObject(k, anyMap{m: m, depth: 1})
	}
}

type stringArray []string

func (a stringArray) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, s := range a {
		enc.AppendString(s)
	}
	return nil
}

// stringMap, headerMap and anyMap write their keys in sorted order so that
// equal events encode to equal bytes.
type stringMap map[string]string

func (m stringMap) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	var buf [16]entry[string]
	for _, e := range sortedEntries(buf[:0], m) {
		enc.AddString(e.k, e.v)
	}
	return nil
}

type headerMap map[string][]string

func (m headerMap) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	var buf [16]entry[[]string]
	for _, e := range sortedEntries(buf[:0], m) {
		_ = enc.AddArray(e.k, stringArray(e.v))
	}
	return nil
}

type entry[V any] struct {
	k string
	v V
}

// sortedEntries appends m's entries to dst and sorts them by key. Records
// are encoded on every request's path: with dst backed by an array on the
// caller's stack, small maps cost no allocation, and keeping the values
// saves a map lookup per key.
func sortedEntries[V any](dst []entry[V], m map[string]V) []entry[V] {
	for k, v := range m {
		dst = append(dst, entry[V]{k, v})
	}
	if len(dst) > 16 {
		slices.SortFunc(dst, func(a, b entry[V]) int { return strings.Compare(a.k, b.k) })
		return dst
	}
	// Most maps of a record are small: an insertion sort comparing keys
	// with < took half the time of slices.SortFunc, whose comparison is
	// an indirect call.
	for i := 1; i < len(dst); i++ {
		for j := i; j > 0 && dst[j].k < dst[j-1].k; j-- {
			dst[j], dst[j-1] = dst[j-1], dst[j]
		}
	}
	return dst
}

type anyMap struct {
	m     map[string]any
	depth int
}

func (a anyMap) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	var buf [16]entry[any]
	for _, e := range sortedEntries(buf[:0], a.m) {
		addAny(enc, e.k, e.v, a.depth)
	}
	return nil
}

type anyArray struct {
	s     []any
	depth int
}

func (a anyArray) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, v := range a.s {
		appendAny(enc, v, a.depth)
	}
	return nil
}

// addAny writes one JSON-shaped value. It never fails: a value that cannot be
// encoded is replaced by a string saying so, because an odd value in one
// member must neither drop the rest of the record nor stop the record from
// being written.
func addAny(enc zapcore.ObjectEncoder, k string, v any, depth int) {
	if depth > maxDepth {
		enc.AddString(k, "!nesting too deep")
		return
	}
	switch v := v.(type) {
	case string:
		enc.AddString(k, v)
	case bool:
		enc.AddBool(k, v)
	case float64:
		enc.AddFloat64(k, v)
	case float32:
		enc.AddFloat32(k, v)
	case int:
		enc.AddInt(k, v)
	case int64:
		enc.AddInt64(k, v)
	case int32:
		enc.AddInt32(k, v)
	case uint64:
		enc.AddUint64(k, v)
	case uint32:
		enc.AddUint32(k, v)
	case uint:
		enc.AddUint(k, v)
	case map[string]any:
		_ = enc.AddObject(k, anyMap{m: v, depth: depth + 1})
	case map[string]string:
		_ = enc.AddObject(k, stringMap(v))
	case []any:
		_ = enc.AddArray(k, anyArray{s: v, depth: depth + 1})
	case []string:
		_ = enc.AddArray(k, stringArray(v))
	case zapcore.ObjectMarshaler:
		_ = enc.AddObject(k, v)
	case zapcore.ArrayMarshaler:
		_ = enc.AddArray(k, v)
	default:
		// nil, json.Number, json.Marshaler and other values go through
		// encoding/json, which sorts map keys.
		if err := enc.AddReflected(k, v); err != nil {
			enc.AddString(k, unencodable(v, err))
		}
	}
}

func appendAny(enc zapcore.ArrayEncoder, v any, depth int) {
	if depth > maxDepth {
		enc.AppendString("!nesting too deep")
		return
	}
	switch v := v.(type) {
	case string:
		enc.AppendString(v)
	case bool:
		enc.AppendBool(v)
	case float64:
		enc.AppendFloat64(v)
	case float32:
		enc.AppendFloat32(v)
	case int:
		enc.AppendInt(v)
	case int64:
		enc.AppendInt64(v)
	case int32:
		enc.AppendInt32(v)
	case uint64:
		enc.AppendUint64(v)
	case uint32:
		enc.AppendUint32(v)
	case uint:
		enc.AppendUint(v)
	case map[string]any:
		_ = enc.AppendObject(anyMap{m: v, depth: depth + 1})
	case map[string]string:
		_ = enc.AppendObject(stringMap(v))
	case []any:
		_ = enc.AppendArray(anyArray{s: v, depth: depth + 1})
	case []string:
		_ = enc.AppendArray(stringArray(v))
	case zapcore.ObjectMarshaler:
		_ = enc.AppendObject(v)
	case zapcore.ArrayMarshaler:
		_ = enc.AppendArray(v)
	default:
		if err := enc.AppendReflected(v); err != nil {
			enc.AppendString(unencodable(v, err))
		}
	}
}

func unencodable(v any, err error) string {
	return fmt.Sprintf("!unencodable %T: %v", v, err)
}

// ParseRecord decodes one audit line (with or without its trailing newline).
// It does not check the hash chain; use [Verify] for that. Numbers inside
// Action, Input and Fields decode as json.Number, so they keep their exact
// text.
func ParseRecord(line []byte) (*Record, error) {
	var rec Record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("parse audit record: %w", err)
	}
	if len(bytes.TrimSpace(line[dec.InputOffset():])) > 0 {
		return nil, errors.New("parse audit record: data after the object")
	}
	return &rec, nil
}
