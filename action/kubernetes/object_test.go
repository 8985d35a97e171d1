package kubernetes

import (
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/countersign/countersign/internal/golden"
)

// pb builds protobuf fields for the tests: tag then payload.
func pbBytes(num int, val []byte) []byte {
	b := binary.AppendUvarint(nil, uint64(num)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(val)))
	return append(b, val...)
}

func pbString(num int, s string) []byte { return pbBytes(num, []byte(s)) }

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// k8sProto wraps raw in the Kubernetes protobuf envelope.
func k8sProto(kind string, raw []byte, extra ...[]byte) string {
	unknown := cat(pbBytes(1, cat(pbString(1, "v1"), pbString(2, kind))), pbBytes(2, raw))
	return "k8s\x00" + string(cat(append([][]byte{unknown}, extra...)...))
}

func TestObjectOf(t *testing.T) {
	const proto = "application/vnd.kubernetes.protobuf"
	meta := func(name string) []byte { return pbBytes(1, pbString(1, name)) }
	tests := []struct {
		name, contentType, body string
		truncated               bool
		wantKind, wantName      string
	}{
		{"json", "application/json", `{"kind":"Namespace","metadata":{"name":"prod"}}`, false, "Namespace", "prod"},
		{"json with charset", "application/json; charset=utf-8", `{"kind":"Pod","metadata":{"name":"web"}}`, false, "Pod", "web"},
		{"no content type is JSON", "", `{"kind":"Pod","metadata":{"name":"web"}}`, false, "Pod", "web"},
		{"json keys are case-sensitive", "application/json", `{"Kind":"Pod","metadata":{"Name":"web"}}`, false, "", ""},
		{"json last duplicate wins", "application/json", `{"metadata":{"name":"a","name":"b"}}`, false, "", "b"},
		{"json generateName is not a name", "application/json", `{"kind":"Pod","metadata":{"generateName":"web-"}}`, false, "Pod", ""},
		{"json not an object", "application/json", `["x"]`, false, "", ""},
		{"json wrong types", "application/json", `{"kind":1,"metadata":{"name":["x"]}}`, false, "", ""},
		{"yaml is not read", "application/yaml", "kind: Pod\nmetadata:\n  name: web\n", false, "", ""},
		{"truncated", "application/json", `{"kind":"Pod","metadata":{"name":"web"}}`, true, "", ""},
		// The API server reads the type before the first ";", whatever follows.
		{"bad content type parameter", "application/json; =", `{"kind":"Pod"}`, false, "Pod", ""},
		{"protobuf", proto, k8sProto("Namespace", meta("prod")), false, "Namespace", "prod"},
		{"protobuf other fields skipped", proto, k8sProto("Pod", cat(meta("web"), pbString(2, "spec"), []byte{0x18, 0x96, 0x01}, []byte{0x21, 1, 2, 3, 4, 5, 6, 7, 8}, []byte{0x2d, 1, 2, 3, 4})), false, "Pod", "web"},
		{"protobuf repeated metadata merges, last name wins", proto, k8sProto("Pod", cat(meta("a"), pbBytes(1, pbString(3, "ns")), meta("b"))), false, "Pod", "b"},
		{"protobuf content encoding is not read", proto, k8sProto("Pod", meta("web"), pbString(3, "gzip")), false, "", ""},
		{"protobuf without magic", proto, string(meta("web")), false, "", ""},
		{"protobuf truncated length", proto, "k8s\x00\x12\x10ab", false, "", ""},
		{"protobuf group wire type", proto, "k8s\x00\x0b", false, "", ""},
		{"protobuf field zero", proto, "k8s\x00\x02\x00", false, "", ""},
		{"protobuf overlong varint", proto, "k8s\x00\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", false, "", ""},
		{"protobuf malformed raw", proto, k8sProto("Pod", []byte{0x0a, 0x05, 'a'}), false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, name := objectOf(tt.contentType, []byte(tt.body), tt.truncated)
			if kind != tt.wantKind || name != tt.wantName {
				t.Errorf("objectOf(%q, %q) = %q, %q, want %q, %q", tt.contentType, tt.body, kind, name, tt.wantKind, tt.wantName)
			}
		})
	}
}

// FuzzObject feeds arbitrary bodies to the JSON and protobuf object readers.
func FuzzObject(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, path := range files {
		raw, _ := golden.Read(f, path)
		r, err := golden.Request(raw, goldenOptions)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(r.Header.Get("Content-Type") == "application/vnd.kubernetes.protobuf", r.Body)
	}
	f.Add(true, []byte(k8sProto("Pod", pbBytes(1, pbString(1, "web")))))
	f.Fuzz(func(t *testing.T, protobuf bool, body []byte) {
		ct := "application/json"
		if protobuf {
			ct = "application/vnd.kubernetes.protobuf"
		}
		kind, name := objectOf(ct, body, false)
		if len(kind) > len(body) || len(name) > len(body) {
			t.Fatalf("objectOf returned more than it was given")
		}
	})
}
