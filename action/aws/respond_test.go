package aws

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/action"
)

const denyMsg = `countersign: denied by policy AWS-1: "no" & <never>`

// parsedError is what botocore reads from an error response: the code and
// message it prints as "An error occurred (Code) …: Message".
type parsedError struct {
	Status             int
	ContentType, Code  string
	Message, ErrorType string
}

// parseLikeBotocore reads an error body the way botocore's parser for the
// protocol does (botocore/parsers.py: QueryParser, EC2QueryParser,
// JSONParser, RestJSONParser, RestXMLParser).
func parseLikeBotocore(t *testing.T, protocol string, resp action.Response) parsedError {
	t.Helper()
	p := parsedError{Status: resp.Status, ContentType: resp.Header.Get("Content-Type"), ErrorType: resp.Header.Get("X-Amzn-Errortype")}
	switch protocol {
	case protoQuery:
		var v struct {
			XMLName xml.Name `xml:"ErrorResponse"`
			Code    string   `xml:"Error>Code"`
			Message string   `xml:"Error>Message"`
			ID      string   `xml:"RequestId"`
		}
		mustXML(t, resp.Body, &v)
		p.Code, p.Message = v.Code, v.Message
	case protoEC2:
		var v struct {
			XMLName xml.Name `xml:"Response"`
			Code    string   `xml:"Errors>Error>Code"`
			Message string   `xml:"Errors>Error>Message"`
			ID      string   `xml:"RequestID"`
		}
		mustXML(t, resp.Body, &v)
		p.Code, p.Message = v.Code, v.Message
	case protoRESTXML:
		var v struct {
			XMLName xml.Name
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
			Inner   struct {
				Code    string `xml:"Code"`
				Message string `xml:"Message"`
			} `xml:"Error"`
		}
		mustXML(t, resp.Body, &v)
		p.Code, p.Message = v.Code, v.Message
		if v.XMLName.Local == "ErrorResponse" {
			p.Code, p.Message = v.Inner.Code, v.Inner.Message
		}
	case protoJSON, protoRESTJSON:
		var v map[string]string
		if err := json.Unmarshal(resp.Body, &v); err != nil {
			t.Fatalf("JSON error body %q: %v", resp.Body, err)
		}
		p.Code, p.Message = v["__type"], v["message"]
		if p.Code == "" {
			p.Code = p.ErrorType
		}
	}
	return p
}

func mustXML(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := xml.Unmarshal(b, v); err != nil {
		t.Fatalf("XML error body %q: %v", b, err)
	}
}

func TestRespond(t *testing.T) {
	tests := []struct {
		name     string
		give     *action.Request
		status   int
		protocol string
		want     parsedError
	}{
		{
			name: "EC2", give: req("POST", "https://ec2.us-east-1.amazonaws.com/", "Action=TerminateInstances", "Content-Type", form),
			status: 403, protocol: protoEC2,
			want: parsedError{Status: 403, ContentType: "text/xml;charset=UTF-8", Code: "UnauthorizedOperation", Message: denyMsg},
		},
		{
			name: "query", give: req("POST", "https://iam.amazonaws.com/", "Action=DeleteUser", "Content-Type", form),
			status: 403, protocol: protoQuery,
			want: parsedError{Status: 403, ContentType: "text/xml", Code: "AccessDenied", Message: denyMsg},
		},
		{
			name: "JSON 1.0", give: req("POST", "https://dynamodb.us-east-1.amazonaws.com/", "{}", "X-Amz-Target", "DynamoDB_20120810.DeleteTable", "Content-Type", "application/x-amz-json-1.0"),
			status: 403, protocol: protoJSON,
			want: parsedError{Status: 400, ContentType: "application/x-amz-json-1.0", Code: "AccessDeniedException", ErrorType: "AccessDeniedException", Message: denyMsg},
		},
		{
			name: "JSON 1.1", give: req("POST", "https://ecs.us-east-1.amazonaws.com/", "{}", "X-Amz-Target", "AmazonEC2ContainerServiceV20141113.DeleteCluster", "Content-Type", "application/x-amz-json-1.1"),
			status: 403, protocol: protoJSON,
			want: parsedError{Status: 400, ContentType: "application/x-amz-json-1.1", Code: "AccessDeniedException", ErrorType: "AccessDeniedException", Message: denyMsg},
		},
		{
			name: "rest-json", give: req("DELETE", "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/f", ""),
			status: 403, protocol: protoRESTJSON,
			want: parsedError{Status: 403, ContentType: "application/json", Code: "AccessDeniedException", ErrorType: "AccessDeniedException", Message: denyMsg},
		},
		{
			name: "S3", give: req("DELETE", "https://b.s3.amazonaws.com/k", ""),
			status: 403, protocol: protoRESTXML,
			want: parsedError{Status: 403, ContentType: "application/xml", Code: "AccessDenied", Message: denyMsg},
		},
		{
			name: "Route 53", give: req("POST", "https://route53.amazonaws.com/2013-04-01/hostedzone/Z1/rrset/", "<x/>"),
			status: 403, protocol: protoRESTXML,
			want: parsedError{Status: 403, ContentType: "application/xml", Code: "AccessDenied", Message: denyMsg},
		},
		{
			name: "body too large keeps its status", give: req("PUT", "https://b.s3.amazonaws.com/k", "x"),
			status: 413, protocol: protoRESTXML,
			want: parsedError{Status: 413, ContentType: "application/xml", Code: "RequestEntityTooLarge", Message: denyMsg},
		},
	}
	p := New(Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := p.Classify(tt.give)
			if a.Fields["protocol"] != tt.protocol {
				t.Fatalf("protocol %v, want %s", a.Fields["protocol"], tt.protocol)
			}
			resp := p.Respond(tt.give, a, action.Denial{Status: tt.status, Decision: "deny", Message: denyMsg})
			if diff := cmp.Diff(tt.want, parseLikeBotocore(t, tt.protocol, resp)); diff != "" {
				t.Errorf("Respond(%s) as botocore reads it (-want +got):\n%s\nbody %s", tt.name, diff, resp.Body)
			}
			if resp.Header.Get("Content-Length") == "" {
				t.Errorf("no Content-Length")
			}
		})
	}
}

func TestRespondCBOR(t *testing.T) {
	p := New(Options{})
	r := req("POST", "https://monitoring.us-east-1.amazonaws.com/service/GraniteServiceVersion20100801/operation/DeleteAlarms", "\xa0", "Smithy-Protocol", "rpc-v2-cbor")
	a, _ := p.Classify(r)
	resp := p.Respond(r, a, action.Denial{Status: http.StatusForbidden, Message: "countersign: no"})
	want := append([]byte{0xa2, 0x66}, "__type"...)
	want = append(append(want, 0x75), "AccessDeniedException"...)
	want = append(append(want, 0x67), "message"...)
	want = append(append(want, 0x6f), "countersign: no"...)
	if diff := cmp.Diff(want, resp.Body); diff != "" {
		t.Errorf("CBOR body (-want +got):\n%s", diff)
	}
	if got := resp.Header.Get("Smithy-Protocol"); got != "rpc-v2-cbor" {
		t.Errorf("Smithy-Protocol %q", got)
	}
}

func TestCBORLengths(t *testing.T) {
	for _, n := range []int{0, 23, 24, 255, 256, 65535, 65536} {
		b := cborHead(nil, 3, uint64(n))
		var got int
		switch {
		case b[0]&0x1f < 24:
			got = int(b[0] & 0x1f)
		case b[0]&0x1f == 24:
			got = int(b[1])
		case b[0]&0x1f == 25:
			got = int(b[1])<<8 | int(b[2])
		case b[0]&0x1f == 26:
			got = int(b[1])<<24 | int(b[2])<<16 | int(b[3])<<8 | int(b[4])
		}
		if got != n || b[0]>>5 != 3 {
			t.Errorf("cborHead(%d) = %x", n, b)
		}
	}
}
