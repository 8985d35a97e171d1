package kubernetes

import (
	"encoding/binary"
	"strings"
	"testing"
)

func TestReplicasOf(t *testing.T) {
	tests := []struct {
		name, ctype, body string
		want              int64
		ok                bool
	}{
		{"merge patch", "application/merge-patch+json", `{"spec":{"replicas":0}}`, 0, true},
		{"strategic merge patch", "application/strategic-merge-patch+json", `{"spec":{"replicas":3}}`, 3, true},
		{"update", "application/json", `{"kind":"Scale","spec":{"replicas":0}}`, 0, true},
		{"no content type", "", `{"spec":{"replicas":0}}`, 0, true},
		{"JSON patch", "application/json-patch+json", `[{"op":"replace","path":"/spec/replicas","value":0}]`, 0, true},
		{"JSON patch, last wins", "application/json-patch+json", `[{"op":"replace","path":"/spec/replicas","value":0},{"op":"replace","path":"/spec/replicas","value":2}]`, 2, true},
		{"JSON patch of /spec", "application/json-patch+json", `[{"op":"add","path":"/spec","value":{"replicas":0}}]`, 0, true},
		{"JSON patch of the document", "application/json-patch+json", `[{"op":"replace","path":"","value":{"spec":{"replicas":0}}}]`, 0, true},
		{"JSON patch, copied from elsewhere", "application/json-patch+json", `[{"op":"add","path":"/spec/minReadySeconds","value":0},{"op":"copy","from":"/spec/minReadySeconds","path":"/spec/replicas"}]`, 0, true},
		{"JSON patch at a path without its leading slash", "application/json-patch+json", `[{"op":"replace","path":"x/spec/replicas","value":0}]`, 0, true},
		{"JSON patch, test only", "application/json-patch+json", `[{"op":"test","path":"/spec/replicas","value":0}]`, 0, false},
		{"JSON patch removed again", "application/json-patch+json", `[{"op":"replace","path":"/spec/replicas","value":0},{"op":"remove","path":"/spec/replicas"}]`, 0, false},
		{"apply YAML", "application/apply-patch+yaml", "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: 0\n", 0, true},
		{"apply YAML float", "application/apply-patch+yaml", "spec: {replicas: 0.0}\n", 0, true},
		{"number as float", "application/merge-patch+json", `{"spec":{"replicas":0.0}}`, 0, true},
		{"not a whole number", "application/merge-patch+json", `{"spec":{"replicas":0.5}}`, 0, false},
		{"string", "application/merge-patch+json", `{"spec":{"replicas":"0"}}`, 0, false},
		{"no replicas", "application/merge-patch+json", `{"metadata":{"labels":{"a":"b"}}}`, 0, false},
		{"other case is not the field", "application/merge-patch+json", `{"spec":{"Replicas":0}}`, 0, false},
		{"broken", "application/json", `{"spec":`, 0, false},
		// Found by review: the API server reads YAML with goyaml.v2.
		{"apply YAML merge key after the count", "application/apply-patch+yaml", "spec:\n  replicas: 3\n  <<: {replicas: 0}\n", 0, true},
		{"apply YAML count given twice", "application/apply-patch+yaml", "spec:\n  replicas: 3\n  replicas: 0\n", 0, true},
		{"YAML without a count, unreadable", "application/yaml", "data:\n  a: 1\n  a: 2\n", 0, false},
		{"apply YAML tagged merge key", "application/apply-patch+yaml", "spec:\n  replicas: 3\n  !!merge \"\\x3c\\x3c\": {replicas: 0}\n", 0, true},
		{"apply YAML duplicate key elsewhere, escaped count", "application/apply-patch+yaml", "metadata: {name: web, name: web}\nspec:\n  \"\\x72eplicas\": 0\n", 0, true},
		{"apply JSON with << in a string", "application/apply-patch+yaml", `{"spec":{"replicas":3,"template":{"spec":{"containers":[{"command":["sh","-c","cat <<EOF"]}]}}}}`, 3, true},
		// The server reads the type before ";", whatever follows.
		{"JSON patch with a bad parameter", "application/json-patch+json; foo", `[{"op":"replace","path":"/spec/replicas","value":0}]`, 0, true},
		{"apply YAML with a bad parameter", "application/apply-patch+yaml; foo", "spec:\n  replicas: 0\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ok := replicasOf(tt.ctype, []byte(tt.body), false, false, false)
			if n != tt.want || ok != tt.ok {
				t.Errorf("replicasOf(%s, %s) = %d, %v; want %d, %v", tt.ctype, tt.body, n, ok, tt.want, tt.ok)
			}
		})
	}
	if _, ok := replicasOf("application/json", []byte(`{"spec":{"replicas":0}}`), true, false, false); ok {
		t.Error("replicasOf read a truncated body")
	}
}

func FuzzReplicasOf(f *testing.F) {
	for _, s := range []struct{ ctype, body string }{
		{"application/merge-patch+json", `{"spec":{"replicas":0}}`},
		{"application/json-patch+json", `[{"op":"replace","path":"/spec/replicas","value":0}]`},
		{"application/json-patch+json", `[{"op":"add","path":"/spec","value":{"replicas":2}},{"op":"remove","path":"/spec"}]`},
		{"application/apply-patch+yaml", "spec:\n  replicas: 0\n"},
		{"application/apply-patch+yaml", "spec: &a {replicas: *a}\n"},
		{"application/json", `{"spec":{"replicas":1e400}}`},
	} {
		f.Add(s.ctype, []byte(s.body))
	}
	f.Add("application/vnd.kubernetes.protobuf", []byte(k8sProto("Scale", cat(pbBytes(1, pbString(1, "web")), pbBytes(2, pbVarintField(1, 3))))))
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		n, ok := replicasOf(ctype, body, false, false, false)
		n2, ok2 := replicasOf(ctype, body, false, false, false)
		if n != n2 || ok != ok2 {
			t.Fatalf("replicasOf is not deterministic: %d %v, then %d %v", n, ok, n2, ok2)
		}
		if !ok && n != 0 {
			t.Fatalf("replicasOf = %d without ok", n)
		}
	})
}

func pbVarintField(num int, v uint64) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(nil, uint64(num<<3)), v)
}

// A Scale replaced with "spec":{} sets 0 (autoscaling/v1 leaves a zero
// out); a patch without replicas leaves them as they are (found by review).
func TestReplicasOfScaleUpdate(t *testing.T) {
	if n, ok := replicasOf("application/json", []byte(`{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"web"},"spec":{}}`), false, true, true); !ok || n != 0 {
		t.Errorf("a Scale update without replicas = %d, %v; want 0", n, ok)
	}
	if n, ok := replicasOf("application/json", []byte(`{"spec":{"replicas":2}}`), false, true, true); !ok || n != 2 {
		t.Errorf("a Scale update to 2 = %d, %v", n, ok)
	}
	if _, ok := replicasOf("application/merge-patch+json", []byte(`{"metadata":{"labels":{"a":"b"}}}`), false, true, false); ok {
		t.Error("a patch without replicas set a count")
	}
	// A patch that clears a Scale's replicas sets 0 (found by review).
	var ctypeBodies [][2]string
	for ctype, body := range map[string]string{
		"application/merge-patch+json":           `{"spec":{"replicas":null}}`,
		"application/json-patch+json":            `[{"op":"remove","path":"/spec/replicas"}]`,
		"application/strategic-merge-patch+json": `{"spec":null}`,
	} {
		ctypeBodies = append(ctypeBodies, [2]string{ctype, body})
	}
	ctypeBodies = append(ctypeBodies,
		[2]string{"application/json-patch+json", `[{"op":"replace","path":"/spec","value":{}}]`},
		[2]string{"application/json-patch+json", `[{"op":"replace","path":"/spec/replicas","value":null}]`},
		[2]string{"application/json-patch+json", `[{"op":"add","path":"/spec","value":null}]`},
		[2]string{"application/strategic-merge-patch+json", `{"spec":{"$patch":"replace"}}`},
		[2]string{"application/strategic-merge-patch+json", `{"spec":{"$patch":"delete"}}`},
		// Found by review: directives and moves that drop the count
		// without naming it.
		[2]string{"application/strategic-merge-patch+json", `{"spec":{"$retainKeys":[]}}`},
		[2]string{"application/strategic-merge-patch+json", `{"$retainKeys":["metadata"]}`},
		[2]string{"application/strategic-merge-patch+json", `{"$patch":"replace","metadata":{"name":"web"}}`},
		[2]string{"application/json-patch+json", `[{"op":"move","from":"/spec","path":"/status"}]`},
		[2]string{"application/json-patch+json", `[{"op":"move","from":"/spec/replicas","path":"/status/replicas"}]`},
	)
	for _, cb := range ctypeBodies {
		ctype, body := cb[0], cb[1]
		if n, ok := replicasOf(ctype, []byte(body), false, true, false); !ok || n != 0 {
			t.Errorf("a scale patch %s = %d, %v; want 0", body, n, ok)
		}
		// On a Deployment, the server defaults a cleared count to 1.
		if _, ok := replicasOf(ctype, []byte(body), false, false, false); ok {
			t.Errorf("a deployment patch %s set a count", body)
		}
	}
}

// client-go writes protobuf when asked to: spec.replicas is read there too
// (found by review: a scale to zero sent so was not seen).
func TestReplicasOfProtobuf(t *testing.T) {
	const pb = "application/vnd.kubernetes.protobuf"
	meta := pbBytes(1, pbBytes(1, []byte("web")))
	tests := []struct {
		name, body string
		want       int64
		ok         bool
	}{
		{"Scale to 3", k8sProto("Scale", cat(meta, pbBytes(2, pbVarintField(1, 3)))), 3, true},
		// protobuf omits a zero; Scale's replicas is not optional, and the
		// server takes the kind from the path when the body leaves it out.
		{"Scale to 0", k8sProto("Scale", cat(meta, pbBytes(2, nil))), 0, true},
		{"Scale to 0, no kind", k8sProto("", cat(meta, pbBytes(2, nil))), 0, true},
		{"Scale to 0, no spec", k8sProto("", meta), 0, true},
		// Pieces of one message are merged, as the server's decoder does.
		{"Deployment, spec in two pieces", k8sProto("Deployment", cat(meta, pbBytes(2, pbVarintField(1, 0)), pbBytes(2, pbBytes(3, nil)))), 0, true},
		{"Deployment with 0", k8sProto("Deployment", cat(meta, pbBytes(2, pbVarintField(1, 0)))), 0, true},
		{"Deployment, last wins", k8sProto("Deployment", cat(meta, pbBytes(2, cat(pbVarintField(1, 0), pbVarintField(1, 2))))), 2, true},
		{"Deployment without replicas", k8sProto("Deployment", cat(meta, pbBytes(2, pbBytes(2, nil)))), 0, false},
		{"no spec", k8sProto("Deployment", meta), 0, false},
		{"malformed", "k8s\x00\x0a\xff", 0, true},
		{"no magic", "not protobuf", 0, true},
	}
	for _, tt := range tests {
		n, ok := replicasOf(pb, []byte(tt.body), false, strings.HasPrefix(tt.name, "Scale"), true)
		if n != tt.want || ok != tt.ok {
			t.Errorf("%s: replicasOf = %d, %v; want %d, %v", tt.name, n, ok, tt.want, tt.ok)
		}
	}
}
