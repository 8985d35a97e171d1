package aws

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/countersign/countersign/action"
)

// Respond implements action.Responder: the denial in the error format of the
// protocol the request spoke, which botocore (the AWS CLI v1 and v2) and the
// SDKs parse into "An error occurred (AccessDenied) when calling the X
// operation: countersign: …".
//
// A policy denial is a 403 (400 for the JSON protocols, as AWS answers
// AccessDeniedException there); other statuses countersign uses (413, 503)
// are kept, so that a client retries what AWS would let it retry and nothing
// else. Neither 400 nor 403 is retried by the SDKs' standard or legacy retry
// modes.
func (*Provider) Respond(r *action.Request, a action.Action, d action.Denial) action.Response {
	protocol, _ := a.Fields["protocol"].(string)
	api, _ := a.Fields["api"].(string)
	if protocol == "rest" && (a.Operation == "Invoke" || a.Operation == "InvokeFunctionUrl") {
		// API Gateway and function URLs answer their own errors in JSON.
		protocol = "rest-invoke"
	}
	id := requestID()
	h := http.Header{}
	status := d.Status
	denied := status == http.StatusForbidden || status == 0
	if status == 0 {
		status = http.StatusForbidden
	}
	code := errorCode(status)
	var body []byte
	switch protocol {
	case protoEC2:
		if denied {
			code = "UnauthorizedOperation"
		}
		body = xmlBody(ec2Error{Code: code, Message: d.Message, RequestID: id})
		h.Set("Content-Type", "text/xml;charset=UTF-8")
	case protoJSON:
		if denied {
			status = http.StatusBadRequest
		}
		ct := "application/x-amz-json-1.1"
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); strings.HasPrefix(mt, "application/x-amz-json-") {
			ct = mt
		}
		body = jsonBody(map[string]string{"__type": code + "Exception", "message": d.Message})
		h.Set("Content-Type", ct)
		h.Set("X-Amzn-Requestid", id)
		h.Set("X-Amzn-Errortype", code+"Exception")
	case protoRESTJSON, "rest-invoke":
		body = jsonBody(map[string]string{"message": d.Message, "Message": d.Message})
		h.Set("Content-Type", "application/json")
		h.Set("X-Amzn-Requestid", id)
		h.Set("X-Amzn-Errortype", code+"Exception")
	case protoCBOR:
		body = cborMap("__type", code+"Exception", "message", d.Message)
		h.Set("Content-Type", "application/cbor")
		h.Set("Smithy-Protocol", "rpc-v2-cbor")
		h.Set("X-Amzn-Requestid", id)
	case protoRESTXML:
		if api == "s3" || api == "" {
			body = xmlBody(s3Error{Code: code, Message: d.Message, RequestID: id})
			h.Set("X-Amz-Request-Id", id)
		} else {
			body = xmlBody(queryError{Error: queryErrorDetail{Type: "Sender", Code: code, Message: d.Message}, RequestID: id})
			h.Set("X-Amzn-Requestid", id)
		}
		h.Set("Content-Type", "application/xml")
	case protoQuery:
		body = xmlBody(queryError{Error: queryErrorDetail{Type: "Sender", Code: code, Message: d.Message}, RequestID: id})
		h.Set("Content-Type", "text/xml")
		h.Set("X-Amzn-Requestid", id)
	default:
		// A REST API the table does not know, or an unreadable request:
		// S3's shape is the one most AWS-compatible clients read.
		body = xmlBody(s3Error{Code: code, Message: d.Message, RequestID: id})
		h.Set("Content-Type", "application/xml")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return action.Response{Status: status, Header: h, Body: body}
}

// errorCode names the error for the status countersign answers with.
func errorCode(status int) string {
	switch status {
	case http.StatusRequestEntityTooLarge:
		return "RequestEntityTooLarge"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	case http.StatusBadRequest:
		return "InvalidRequest"
	}
	return "AccessDenied"
}

type queryError struct {
	XMLName   xml.Name         `xml:"ErrorResponse"`
	Error     queryErrorDetail `xml:"Error"`
	RequestID string           `xml:"RequestId"`
}

type queryErrorDetail struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type ec2Error struct {
	XMLName   xml.Name `xml:"Response"`
	Code      string   `xml:"Errors>Error>Code"`
	Message   string   `xml:"Errors>Error>Message"`
	RequestID string   `xml:"RequestID"`
}

type s3Error struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	RequestID string   `xml:"RequestId"`
}

func xmlBody(v any) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	// Encoding these fixed structs of strings cannot fail.
	_ = xml.NewEncoder(&b).Encode(v)
	return b.Bytes()
}

func jsonBody(v map[string]string) []byte {
	b, _ := json.Marshal(v)
	return b
}

// cborMap encodes a map of text strings in CBOR (RFC 8949), the body of the
// Smithy RPC v2 CBOR protocol; two fixed keys do not justify a library.
func cborMap(kv ...string) []byte {
	b := []byte{0xa0 | byte(len(kv)/2)}
	for _, s := range kv {
		b = cborHead(b, 3, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func cborHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= 0xff:
		return append(b, m|24, byte(n))
	case n <= 0xffff:
		return append(b, m|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// requestID makes an id in the shape AWS uses, so clients that log it find
// one; it is random rather than countersign's own request id, which the
// X-Countersign-Request header already carries.
func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}
