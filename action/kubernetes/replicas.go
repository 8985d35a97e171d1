package kubernetes

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"

	"github.com/countersign/countersign/action"
)

// replicasOf returns the replica count that a create, update or patch body
// sets (spec.replicas), whatever its form: a JSON object (create, update,
// merge and strategic merge patches), a JSON Patch, or a server-side apply
// patch in YAML. ok is false when the body sets none that can be read. A
// policy that holds scaling to zero must see the count however it is sent.
//
// scaleSub says the request writes a scale subresource (…/scale), where
// replicas is not optional: autoscaling/v1's Scale leaves it out when it
// is 0, so a replacement (replace: an update) without a count is 0 (found
// by review: `kubectl scale --replicas=0 --current-replicas=3` sends
// "spec":{}), and a patch that clears it (null, or a JSON Patch remove)
// sets 0 too (`kubectl edit --subresource=scale`).
func replicasOf(contentType string, body []byte, truncated, scaleSub, replace bool) (n int64, ok bool) {
	if truncated || len(body) == 0 {
		return 0, false
	}
	scale := scaleSub && replace
	var doc map[string]any
	switch serverMediaType(contentType) {
	case "application/vnd.kubernetes.protobuf":
		return protobufReplicas(body, scale)
	case "application/json-patch+json":
		return jsonPatchReplicas(body, scaleSub)
	case "application/apply-patch+yaml", "application/yaml":
		// Read as the API server reads it (found by review: yaml.v3 and the
		// server's goyaml.v2 differ on merge keys and duplicate keys, and
		// "replicas: 3" then "<<: {replicas: 0}" read 3 here, 0 there).
		var isObject bool
		if doc, isObject = decodeYAML(body).(map[string]any); !isObject {
			return 0, scale
		}
	default:
		var isObject bool
		if doc, isObject = decodeJSON(body).(map[string]any); !isObject {
			return 0, scale
		}
	}
	if scaleSub && (clearsReplicas(doc) || hasDirective(doc)) {
		// A Scale's spec is its count: a strategic merge patch that
		// retains or replaces keys ($retainKeys, $patch) can drop it, which
		// the server then reads as 0 (found by review).
		return 0, true
	}
	return scaleDefault(specReplicas(doc))(scale)
}

// hasDirective reports whether a strategic merge patch holds a $patch or
// $retainKeys directive, at the top or in spec.
func hasDirective(doc map[string]any) bool {
	spec, _ := doc["spec"].(map[string]any)
	for _, m := range []map[string]any{doc, spec} {
		for k := range m {
			if k == "$patch" || k == "$retainKeys" {
				return true
			}
		}
	}
	return false
}

// serverMediaType is the media type the API server reads in a
// Content-Type: the text before the first ';', trimmed, in lower case. A
// parameter mime.ParseMediaType refuses ("…+json; foo") does not change it
// (found by review: the type was taken to be JSON, and a JSON Patch's
// count went unread).
func serverMediaType(contentType string) string {
	if mt := action.MediaType(contentType); mt != "" {
		return mt
	}
	return "application/json"
}

// clearsReplicas reports whether a document sets spec, or spec.replicas,
// to null.
func clearsReplicas(doc map[string]any) bool {
	spec, has := doc["spec"]
	if has && spec == nil {
		return true
	}
	m, _ := spec.(map[string]any)
	if r, has := m["replicas"]; has && r == nil {
		return true
	}
	// A strategic merge patch that replaces or deletes spec.
	directive, _ := m["$patch"].(string)
	_, hasReplicas := m["replicas"]
	return (directive == "replace" || directive == "delete") && !hasReplicas
}

// scaleDefault is the count specReplicas found, or, when it found none in
// a Scale, 0.
func scaleDefault(n int64, ok bool) func(scale bool) (int64, bool) {
	return func(scale bool) (int64, bool) {
		if !ok && scale {
			return 0, true
		}
		return n, ok
	}
}

// jsonPatchReplicas applies, in order, the operations of a JSON Patch
// that set /spec/replicas (or /spec, or the whole document): the last one
// wins, as when the server applies them. A copy or move into replicas
// counts as 0: its value is not in the patch.
func jsonPatchReplicas(body []byte, scaleSub bool) (n int64, ok bool) {
	ops, isList := decodeJSON(body).([]any)
	if !isList {
		return 0, false
	}
	for _, o := range ops {
		op, _ := o.(map[string]any)
		kind, _ := op["op"].(string)
		path, _ := op["path"].(string)
		path = serverPatchPath(path)
		switch {
		case kind == "remove" && (path == "/spec/replicas" || path == "/spec"):
			// A Scale's replicas is not optional: removed, it is 0.
			n, ok = 0, scaleSub
		case scaleSub && kind == "move" && fromSpec(op["from"]):
			// A Scale's replicas moved out of it: 0.
			n, ok = 0, true
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
		if scaleSub && !ok && (kind == "add" || kind == "replace") && (path == "/spec/replicas" || path == "/spec" || path == "") {
			// A Scale's replicas set to null, or a spec or object
			// without it: 0 (found by review).
			n, ok = 0, true
		}
	}
	return n, ok
}

func specReplicas(doc map[string]any) (int64, bool) {
	spec, _ := doc["spec"].(map[string]any)
	return whole(spec["replicas"])
}

// fromSpec reports whether a JSON Patch "from" is spec.replicas or holds it.
func fromSpec(v any) bool {
	from, ok := v.(string)
	from = serverPatchPath(from)
	return ok && (from == "/spec/replicas" || from == "/spec" || from == "")
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

// decodeYAML decodes a YAML (or JSON) body with the API server's own
// decoder, sigs.k8s.io/yaml: nil when it cannot.
func decodeYAML(body []byte) any {
	if yamlAliases(body) {
		return nil
	}
	j, err := yaml.YAMLToJSON(body)
	if err != nil {
		return nil
	}
	return decodeJSON(j)
}

// DecodeYAML decodes a Kubernetes body in YAML as the API server reads it,
// or returns nil when it cannot, or when the body uses aliases: their
// expansion has no bound (found by review: a 35 KB ConfigMap of aliases
// took 955 MB and five seconds to decode), so it is not attempted, and
// the body counts as one that cannot be read.
func DecodeYAML(body []byte) any { return decodeYAML(body) }

// yamlAliases reports whether a YAML document uses an alias, or cannot be
// parsed far enough to tell. Parsing to nodes does not expand aliases.
func yamlAliases(body []byte) bool {
	if !bytes.ContainsRune(body, '*') {
		return false
	}
	var n yamlv3.Node
	if err := yamlv3.Unmarshal(body, &n); err != nil {
		return true
	}
	return hasAlias(&n)
}

func hasAlias(n *yamlv3.Node) bool {
	if n.Kind == yamlv3.AliasNode {
		return true
	}
	for _, c := range n.Content {
		if hasAlias(c) {
			return true
		}
	}
	return false
}

// decodeBody decodes a body by its media type: YAML, a JSON value, or nil.
func decodeBody(contentType string, body []byte) any {
	if YAMLBody(contentType) {
		return decodeYAML(body)
	}
	return decodeJSON(body)
}

// YAMLBody reports whether the API server reads a body of contentType as
// YAML (an apply patch, or a create or update in YAML).
func YAMLBody(contentType string) bool {
	switch serverMediaType(contentType) {
	case "application/apply-patch+yaml", "application/yaml":
		return true
	}
	return false
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

// protobufReplicas reads spec.replicas from a protobuf body (client-go
// writes protobuf when asked to; found by review: a scale to zero sent so
// was not seen). Scale, Deployment, StatefulSet, ReplicaSet and
// ReplicationController all keep spec as field 2 of the object and
// replicas as field 1 of the spec; a message given in several pieces is
// merged, as the server's decoder does. A Scale (the scale subresource:
// the server fills a missing kind from the path) without the field means
// 0, as its replicas is not optional and protobuf omits zero; a body that
// cannot be read is taken to be 0, as the server would refuse it anyway.
func protobufReplicas(body []byte, scale bool) (int64, bool) {
	unknown, ok := bytes.CutPrefix(body, protobufMagic)
	if !ok {
		return 0, true
	}
	var raw []byte
	encoded := false
	if !protoFields(unknown, func(num int, val []byte) bool {
		switch num {
		case 2:
			raw = val
		case 3:
			encoded = len(val) > 0
		}
		return true
	}) || encoded {
		return 0, true
	}
	var spec []byte
	hasSpec := false
	if !protoFields(raw, func(num int, val []byte) bool {
		if num == 2 {
			spec, hasSpec = append(spec, val...), true
		}
		return true
	}) {
		return 0, true
	}
	if !hasSpec {
		if scale {
			return 0, true
		}
		return 0, false
	}
	n, found, ok := protoVarint(spec, 1)
	switch {
	case !ok:
		return 0, true
	case !found && scale:
		return 0, true
	case !found:
		return 0, false
	}
	// int32 on the wire: a negative value is sign-extended to 64 bits.
	return int64(int32(n)), true
}

// protoVarint returns the last value of varint field num of a protobuf
// message (the last wins, as when the server decodes it).
func protoVarint(b []byte, num int) (v uint64, found, ok bool) {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false, false
		}
		b = b[n:]
		f, wire := key>>3, key&7
		switch wire {
		case 0:
			x, n := binary.Uvarint(b)
			if n <= 0 {
				return 0, false, false
			}
			b = b[n:]
			if int(f) == num {
				v, found = x, true
			}
		case 1:
			if len(b) < 8 {
				return 0, false, false
			}
			b = b[8:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return 0, false, false
			}
			b = b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return 0, false, false
			}
			b = b[4:]
		default:
			return 0, false, false
		}
	}
	return v, found, true
}
