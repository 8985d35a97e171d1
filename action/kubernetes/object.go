package kubernetes

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
)

// objectOf returns the kind and metadata.name of the object a create or
// update carries in its body, so that a policy can judge `kubectl create
// namespace prod` although kubectl sends built-in types as protobuf, which
// the policy input cannot show. Both are "" when the body is absent,
// truncated, in another encoding (YAML, CBOR, gzip), or has no such member;
// a policy that relies on them should deny when they are empty.
//
// Both decoders read the way the API server's do: JSON keys are
// case-sensitive and the last duplicate wins; protobuf fields are last-wins
// and repeated embedded messages merge.
func objectOf(contentType string, body []byte, truncated bool) (kind, name string) {
	if truncated || len(body) == 0 {
		return "", ""
	}
	switch serverMediaType(contentType) {
	case "application/json":
		return jsonObject(body)
	case "application/vnd.kubernetes.protobuf":
		return protobufObject(body)
	}
	return "", ""
}

func jsonObject(body []byte) (kind, name string) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return "", ""
	}
	_ = json.Unmarshal(top["kind"], &kind)
	var meta map[string]json.RawMessage
	if json.Unmarshal(top["metadata"], &meta) == nil {
		_ = json.Unmarshal(meta["name"], &name)
	}
	return kind, name
}

// protobufMagic starts every Kubernetes protobuf body; a runtime.Unknown
// follows: typeMeta = 1 {apiVersion = 1, kind = 2}, raw = 2,
// contentEncoding = 3. Every top-level object's field 1 is its ObjectMeta,
// whose name is field 1.
var protobufMagic = []byte("k8s\x00")

func protobufObject(body []byte) (kind, name string) {
	unknown, ok := bytes.CutPrefix(body, protobufMagic)
	if !ok {
		return "", ""
	}
	var raw []byte
	encoded := false
	ok = protoFields(unknown, func(num int, val []byte) bool {
		switch num {
		case 1:
			return protoFields(val, func(num int, val []byte) bool {
				if num == 2 {
					kind = string(val)
				}
				return true
			})
		case 2:
			raw = val
		case 3:
			encoded = len(val) > 0
		}
		return true
	})
	if !ok || encoded {
		return "", ""
	}
	ok = protoFields(raw, func(num int, val []byte) bool {
		if num != 1 {
			return true
		}
		return protoFields(val, func(num int, val []byte) bool {
			if num == 1 {
				name = string(val)
			}
			return true
		})
	})
	if !ok {
		return "", ""
	}
	return kind, name
}

// protoFields calls fn for each field of a protobuf message in order, with
// the bytes of length-delimited fields (nil for the others). It reports false
// for malformed input or when fn does. Work is linear in len(b): nested
// messages are only walked by fn's own calls, at most two levels deep here.
func protoFields(b []byte, fn func(num int, val []byte) bool) bool {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return false
		}
		b = b[n:]
		num, wire := key>>3, key&7
		if num == 0 || num > 1<<29-1 {
			return false
		}
		var val []byte
		switch wire {
		case 0:
			_, n := binary.Uvarint(b)
			if n <= 0 {
				return false
			}
			b = b[n:]
		case 1:
			if len(b) < 8 {
				return false
			}
			b = b[8:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return false
			}
			val = b[n : n+int(l)]
			b = b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return false
			}
			b = b[4:]
		default:
			// Groups (3, 4) are not used by Kubernetes types.
			return false
		}
		if !fn(int(num), val) {
			return false
		}
	}
	return true
}
