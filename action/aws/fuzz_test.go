package aws

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/internal/golden"
)

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		sigv4("us-east-1", "ec2"),
		"AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=00",
		"AWS4-ECDSA-P256-SHA256 Credential=AKID/20260101/s3/aws4_request, SignedHeaders=host;x-amz-region-set, Signature=00",
		"AWS AKIAIOSFODNN7EXAMPLE:c2lnbmF0dXJl",
		"AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=;;, Signature=",
		"Bearer x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		sig, ok, err := parseAuthorization(v)
		if !ok && err != nil {
			t.Fatalf("parseAuthorization(%q): error for a header that is not a signature", v)
		}
		if !ok || err != nil {
			return
		}
		if !validAccessKeyID(sig.accessKeyID) {
			t.Errorf("parseAuthorization(%q): access key id %q", v, sig.accessKeyID)
		}
		if sig.version != "2" && (!validName(sig.service) || len(sig.signedHeaders) == 0 || len(sig.signedHeaders) > maxSignedHeaders) {
			t.Errorf("parseAuthorization(%q) = %+v", v, sig)
		}
		if sig.version == "4" && !validName(sig.region) {
			t.Errorf("parseAuthorization(%q): region %q", v, sig.region)
		}
	})
}

func FuzzParsePresigned(f *testing.F) {
	for _, s := range []string{
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261126%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261126T163051Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=86",
		"AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=ZwZ%3D&Expires=1795710943",
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Algorithm=AWS4-HMAC-SHA256",
		"X-Amz-Credential=a/b/c/d/aws4_request",
		"list-type=2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		sig, ok, err := parsePresigned(q)
		if !ok && err != nil {
			t.Fatalf("parsePresigned(%q): error without a signature", raw)
		}
		if ok && err == nil && (!sig.presigned || !validAccessKeyID(sig.accessKeyID)) {
			t.Errorf("parsePresigned(%q) = %+v", raw, sig)
		}
	})
}

func FuzzMatchRoute(f *testing.F) {
	for _, s := range []string{
		"GET /mybucket/a/b?list-type=2",
		"POST /mybucket?delete",
		"PUT /mybucket/k?partNumber=1&uploadId=x",
		"DELETE /2015-03-31/functions/f",
		"GET /v20180820/mrap/instances/a/b/policy",
		"GET //",
		"HEAD /",
	} {
		f.Add(s)
	}
	m := loadModels()
	apis := []*api{m.byID["s3"], m.byID["s3control"], m.byID["lambda"], m.byID["apigateway"], m.byID["workspaces-web"]}
	f.Fuzz(func(t *testing.T, line string) {
		method, target, _ := strings.Cut(line, " ")
		p, rawQuery, _ := strings.Cut(target, "?")
		q, _ := url.ParseQuery(rawQuery)
		segs, _ := pathSegments(&action.Request{RawPath: p})
		for _, a := range apis {
			rt, labels := a.match(method, segs, q, http.Header{})
			if rt == nil {
				continue
			}
			for _, s := range rt.segs {
				if s.label != "" && labels[s.label] == "" {
					t.Errorf("%s %q matched %s with an empty label %s", a.id, line, rt.op, s.label)
				}
			}
		}
	})
}

// FuzzClassify feeds whole requests, seeded with the captured golden
// requests, through Classify and Respond: neither may panic, and the work
// stays bounded.
func FuzzClassify(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.txt"))
	for _, file := range files {
		raw, _ := golden.Read(f, file)
		f.Add(raw)
	}
	f.Add([]byte("POST / HTTP/1.1\r\nHost: sqs.amazonaws.com\r\nX-Amz-Target: A.B\r\nX-Amz-Target: A.C\r\nContent-Length: 2\r\n\r\n{}"))
	p := New(Options{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := golden.Request(raw, golden.Options{BodyLimit: 4096})
		if err != nil {
			return
		}
		a, ok := p.Classify(r)
		if !ok {
			return
		}
		if len(a.Resources) > maxResources {
			t.Errorf("%d resources", len(a.Resources))
		}
		resp := p.Respond(r, a, action.Denial{Status: http.StatusForbidden, Decision: "deny", Message: "countersign: no"})
		if resp.Status == 0 || len(resp.Body) == 0 {
			t.Errorf("Respond gave %d with %d bytes", resp.Status, len(resp.Body))
		}
	})
}
