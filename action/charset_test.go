package action

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf16"
)

func utf16le(s string) string {
	var b strings.Builder
	for _, u := range utf16.Encode([]rune(s)) {
		b.WriteByte(byte(u))
		b.WriteByte(byte(u >> 8))
	}
	return b.String()
}

func TestTextEncodingProblem(t *testing.T) {
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"drop_database"}}`
	tests := []struct {
		name, contentType, body string
		want                    string // a part of the problem, "" for none
		encoding                string
		decoded                 bool
	}{
		// Still encoded (botocore adds aws-chunked to gzip): not text.
		{name: "encoded", contentType: "application/json", body: "\x1f\x8b\x08\x00", encoding: "gzip,aws-chunked"},
		{name: "inflated", contentType: "application/json", body: utf16le(call), encoding: "gzip", decoded: true, want: "NUL bytes"},
		{"UTF-8 JSON", "application/json", call, "", "", false},
		{"UTF-8 named", "application/json; charset=UTF-8", call, "", "", false},
		{"latin-1 form", "application/x-www-form-urlencoded; charset=ISO-8859-1", "Action=TerminateInstances", "", "", false},
		{"UTF-16 named", "application/json; charset=utf-16le", utf16le(call), `charset "utf-16le"`, "", false},
		{"UTF-16 unnamed", "application/json", utf16le(call), "NUL bytes", "", false},
		{"UTF-16 GraphQL", "application/graphql", utf16le("mutation { volumeDelete(id: 1) }"), "NUL bytes", "", false},
		{"UTF-8 BOM", "application/json", "\uFEFF" + call, "byte order mark", "", false},
		{"UTF-16 BOM", "application/json", "\xFF\xFE" + utf16le(call), "byte order mark", "", false},
		{"+json", "application/vnd.api+json; charset=utf-7", call, `charset "utf-7"`, "", false},
		{"form in UTF-16", "application/x-www-form-urlencoded; charset=utf-16", utf16le("Action=TerminateInstances"), `charset "utf-16"`, "", false},
		{"a JSON-like type", "application/jsonx; charset=utf-16le", utf16le(call), `charset "utf-16le"`, "", false},
		{"malformed parameters", "application/json; charset=utf-16le; x", utf16le(call), `charset "utf-16le"`, "", false},
		{"charset twice", "application/json; charset=utf-8; charset=utf-16le", call, `charset "utf-16le"`, "", false},
		{"quoted", `application/json; charset="utf-32"`, call, `charset "utf-32"`, "", false},
		// Bodies countersign does not parse as text are not its to judge:
		// an S3 upload of a UTF-16 file is just bytes.
		{"binary upload", "text/plain; charset=utf-16", "\xFF\xFE" + utf16le("notes"), "", "", false},
		{"octet stream", "application/octet-stream", "\x00\x01\x02", "", "", false},
		{"no content type", "", utf16le(call), "", "", false},
		{"Connect stream", "application/connect+json", "\x00\x00\x00\x00\x02{}", "", "", false},
		{"gRPC-Web", "application/grpc-web+json", "\x00\x00\x00\x00\x02{}", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{Header: http.Header{}, Body: []byte(tt.body), Decoded: tt.decoded}
			if tt.encoding != "" {
				r.Header.Set("Content-Encoding", tt.encoding)
			}
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			got := TextEncodingProblem(r)
			if (got == "") != (tt.want == "") || !strings.Contains(got, tt.want) {
				t.Errorf("TextEncodingProblem() = %q, want one saying %q", got, tt.want)
			}
		})
	}
}

// FuzzTextEncodingProblem: any Content-Type and body; a body with a NUL
// sent as JSON is never passed, and nothing panics.
func FuzzTextEncodingProblem(f *testing.F) {
	f.Add("application/json; charset=utf-16le", utf16le(`{"jsonrpc":"2.0"}`))
	f.Add("application/json; charset=utf-8; charset=utf-16le", `{}`)
	f.Add(`application/x-www-form-urlencoded; charset="latin1"`, "Action=x")
	f.Add("application/json", "\uFEFF{}")
	f.Fuzz(func(t *testing.T, contentType, body string) {
		r := &Request{Header: http.Header{"Content-Type": {contentType}}, Body: []byte(body)}
		got := TextEncodingProblem(r)
		mt, _ := mediaType([]string{contentType})
		if got == "" && strings.Contains(mt, "json") && strings.IndexByte(body, 0) >= 0 {
			t.Fatalf("a %s body with a NUL passed", mt)
		}
	})
}
