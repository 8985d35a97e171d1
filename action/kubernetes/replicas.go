package kubernetes

import (
	"bytes"
	"encoding/json"
	"math"
	"mime"

	"go.yaml.in/yaml/v3"
)

// replicasOf returns the replica count that a create, update or patch body
// sets (spec.replicas), whatever its form: a JSON object (create, update,
// merge and strategic merge patches), a JSON Patch, or a server-side apply
// patch in YAML. ok is false when the body sets none that can be read. A
// policy that holds scaling to zero must see the count however it is sent.
func replicasOf(contentType string, body []byte, truncated bool) (n int64, ok bool) {
	if truncated || len(body) == 0 {
		return 0, false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = "application/json"
	}
	switch mt {
	case "application/json-patch+json":
		return jsonPatchReplicas(body)
	case "application/apply-patch+yaml", "application/yaml":
		var doc map[string]any
		if yaml.Unmarshal(body, &doc) != nil {
			return 0, false
		}
		return specReplicas(doc)
	}
	doc, ok := decodeJSON(body).(map[string]any)
	if !ok {
		return 0, false
	}
	return specReplicas(doc)
}

// jsonPatchReplicas applies, in order, the operations of a JSON Patch
// that set /spec/replicas (or /spec, or the whole document): the last one
// wins, as when the server applies them. A copy or move into replicas
// counts as 0: its value is not in the patch.
func jsonPatchReplicas(body []byte) (n int64, ok bool) {
	ops, isList := decodeJSON(body).([]any)
	if !isList {
		return 0, false
	}
	for _, o := range ops {
		op, _ := o.(map[string]any)
		kind, _ := op["op"].(string)
		path, _ := op["path"].(string)
		switch {
		case kind == "remove" && (path == "/spec/replicas" || path == "/spec"):
			n, ok = 0, false
		case (kind == "copy" || kind == "move") && (path == "/spec/replicas" || path == "/spec" || path == ""):
			// A value taken from elsewhere in the object: it may be 0,
			// and is taken to be.
			n, ok = 0, true
		case kind != "add" && kind != "replace":
		case path == "/spec/replicas":
			n, ok = whole(op["value"])
		case path == "/spec":
			spec, _ := op["value"].(map[string]any)
			n, ok = whole(spec["replicas"])
		case path == "":
			doc, _ := op["value"].(map[string]any)
			n, ok = specReplicas(doc)
		}
	}
	return n, ok
}

func specReplicas(doc map[string]any) (int64, bool) {
	spec, _ := doc["spec"].(map[string]any)
	return whole(spec["replicas"])
}

// whole reads a whole number from a decoded JSON (json.Number) or YAML
// (int) value.
func whole(v any) (int64, bool) {
	switch v := v.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n, true
		}
		if f, err := v.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f), true
		}
	case int:
		return int64(v), true
	case int64:
		return v, true
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v), true
		}
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int64(v), true
		}
	}
	return 0, false
}

func decodeJSON(body []byte) any {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || dec.More() {
		return nil
	}
	return v
}
