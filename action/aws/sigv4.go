package aws

import (
	"errors"
	"net/url"
	"strings"
)

// signature is what a request's AWS signature says about it. The signature
// itself is never checked (countersign does not hold the secret key); it is
// read because AWS rejects a request whose credential scope does not match
// the service and region it reaches, so the scope names what AWS will run.
type signature struct {
	version       string // "4", "4a" (SigV4a) or "2"
	accessKeyID   string
	date          string
	region        string // empty for SigV4a and SigV2
	service       string
	signedHeaders []string
	presigned     bool
}

// Bounds on what is read from a signature: real ones are far smaller.
const (
	maxAuthorizationLen = 8 << 10
	maxSignedHeaders    = 64
)

var errMalformed = errors.New("malformed")

// parseAuthorization parses an Authorization header value:
//
//	AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=…
//	AWS4-ECDSA-P256-SHA256 Credential=AKID/20250101/s3/aws4_request, SignedHeaders=…, Signature=…
//	AWS AKID:signature (SigV2, S3)
//
// ok is false when the header is not an AWS signature at all; err is set
// when it claims to be one but cannot be read.
func parseAuthorization(v string) (sig signature, ok bool, err error) {
	if len(v) > maxAuthorizationLen {
		if strings.HasPrefix(v, "AWS") {
			return signature{}, true, errMalformed
		}
		return signature{}, false, nil
	}
	alg, rest, _ := strings.Cut(v, " ")
	switch alg {
	case "AWS4-HMAC-SHA256":
		sig.version = "4"
	case "AWS4-ECDSA-P256-SHA256":
		sig.version = "4a"
	case "AWS":
		// SigV2: "AWS AccessKeyId:Signature".
		akid, _, found := strings.Cut(strings.TrimSpace(rest), ":")
		if !found || !validAccessKeyID(akid) {
			return signature{}, true, errMalformed
		}
		return signature{version: "2", accessKeyID: akid}, true, nil
	default:
		return signature{}, false, nil
	}
	var credential, signed string
	var seen int
	for part := range strings.SplitSeq(rest, ",") {
		k, val, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found {
			return signature{}, true, errMalformed
		}
		var bit int
		switch k {
		case "Credential":
			credential, bit = val, 1
		case "SignedHeaders":
			signed, bit = val, 2
		case "Signature":
			bit = 4
		}
		if seen&bit != 0 {
			// Given twice: which one AWS reads is not ours to guess, and
			// the access key names whom approvals are bound to.
			return signature{}, true, errMalformed
		}
		seen |= bit
	}
	if seen != 7 {
		return signature{}, true, errMalformed
	}
	if err := sig.setCredential(credential); err != nil {
		return signature{}, true, err
	}
	if sig.signedHeaders, err = parseSignedHeaders(signed); err != nil {
		return signature{}, true, err
	}
	return sig, true, nil
}

// parsePresigned reads a signature from the query string of a presigned URL
// (X-Amz-Algorithm, X-Amz-Credential, X-Amz-SignedHeaders, X-Amz-Signature),
// or a SigV2 one (AWSAccessKeyId, Signature).
func parsePresigned(q url.Values) (sig signature, ok bool, err error) {
	alg, hasAlg := q["X-Amz-Algorithm"]
	_, hasCred := q["X-Amz-Credential"]
	if !hasAlg && !hasCred {
		if akid, ok := q["AWSAccessKeyId"]; ok {
			if _, signed := q["Signature"]; !signed || len(akid) != 1 || !validAccessKeyID(akid[0]) {
				return signature{}, true, errMalformed
			}
			return signature{version: "2", accessKeyID: akid[0], presigned: true}, true, nil
		}
		return signature{}, false, nil
	}
	one := func(k string) (string, bool) {
		vs := q[k]
		return firstIfOne(vs), len(vs) == 1
	}
	a, _ := one("X-Amz-Algorithm")
	switch {
	case !hasAlg:
		return signature{}, true, errMalformed
	case a == "AWS4-HMAC-SHA256" && len(alg) == 1:
		sig.version = "4"
	case a == "AWS4-ECDSA-P256-SHA256" && len(alg) == 1:
		sig.version = "4a"
	default:
		return signature{}, true, errMalformed
	}
	cred, ok1 := one("X-Amz-Credential")
	signed, ok2 := one("X-Amz-SignedHeaders")
	_, ok3 := one("X-Amz-Signature")
	if !ok1 || !ok2 || !ok3 || len(cred) > maxAuthorizationLen || len(signed) > maxAuthorizationLen {
		return signature{}, true, errMalformed
	}
	if err := sig.setCredential(cred); err != nil {
		return signature{}, true, err
	}
	if sig.signedHeaders, err = parseSignedHeaders(signed); err != nil {
		return signature{}, true, err
	}
	sig.presigned = true
	return sig, true, nil
}

func firstIfOne(vs []string) string {
	if len(vs) == 1 {
		return vs[0]
	}
	return ""
}

// setCredential reads the credential scope
// AKID/yyyymmdd/region/service/aws4_request (SigV4) or
// AKID/yyyymmdd/service/aws4_request (SigV4a, whose regions are in
// X-Amz-Region-Set).
func (sig *signature) setCredential(c string) error {
	parts := strings.Split(c, "/")
	want := 5
	if sig.version == "4a" {
		want = 4
	}
	if len(parts) != want || parts[want-1] != "aws4_request" || !validAccessKeyID(parts[0]) || !validDate(parts[1]) {
		return errMalformed
	}
	sig.accessKeyID, sig.date = parts[0], parts[1]
	if want == 5 {
		sig.region, sig.service = parts[2], parts[3]
		if !validName(sig.region) {
			return errMalformed
		}
	} else {
		sig.service = parts[2]
	}
	if !validName(sig.service) {
		return errMalformed
	}
	return nil
}

func parseSignedHeaders(s string) ([]string, error) {
	if s == "" {
		return nil, errMalformed
	}
	hs := strings.Split(s, ";")
	if len(hs) > maxSignedHeaders {
		return nil, errMalformed
	}
	for _, h := range hs {
		if !validHeaderName(h) {
			return nil, errMalformed
		}
	}
	return hs, nil
}

// validAccessKeyID accepts the characters access key ids use (AKIA…, ASIA…,
// and the longer ids of other issuers), so that nothing odd reaches logs
// or policies under a name that promises an id.
func validAccessKeyID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validDate(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validName accepts region and signing names: us-east-1, execute-api,
// IoTSecuredTunneling, runtime.sagemaker.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

func validHeaderName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
