// Package aws classifies AWS API requests (SigV4-signed, *.amazonaws.com)
// into service:operation actions and answers denials in the error formats
// the AWS CLI and SDKs parse.
//
// The operation comes from the request's own protocol: X-Amz-Target for the
// JSON protocols, Action= in the query or form body for the query and EC2
// protocols, and the REST route (method, path template, query-string and
// header discriminators) for rest-json and rest-xml. Which API a request
// belongs to comes from its SigV4 credential scope and its endpoint name.
// Every API and operation is in table_gen.go, generated from the AWS SDK
// models (see generate.go), so no service is special-cased by hand.
package aws

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/countersign/countersign/action"
)

// Options configures the AWS provider.
type Options struct{}

// Provider is the AWS classifier.
type Provider struct{ opts Options }

// New returns the AWS provider.
func New(opts Options) *Provider { return &Provider{opts: opts} }

// Name implements action.Provider.
func (*Provider) Name() string { return "aws" }

// Protocols as reported in the action's protocol field.
const (
	protoQuery    = "query"
	protoEC2      = "ec2"
	protoJSON     = "json"
	protoRESTJSON = "rest-json"
	protoRESTXML  = "rest-xml"
	protoCBOR     = "rpc-v2-cbor"
)

// Classify implements action.Provider. It claims requests that carry an AWS
// signature (Authorization header or presigned query) and requests to AWS
// endpoint names; everything else is left to the other providers.
// Reject implements action.Rejecter: a call that names its operation in
// more than one way (X-Amz-Target and Action=, two different Actions, a
// Smithy RPC v2 route and a target), or that gives a parameter twice with
// different values, is refused before policy: countersign cannot tell
// which AWS would act on, and a decoy read could hide a write.
func (p *Provider) Reject(a action.Action) (status int, reason string, bad bool) {
	if a.Fields["rejected"] != true {
		return 0, "", false
	}
	return http.StatusBadRequest, a.ParseError + "; name the operation once, and send each parameter once", true
}

func (p *Provider) Classify(r *action.Request) (action.Action, bool) {
	if r.Tunnel {
		return action.Action{}, false
	}
	var sig signature
	var signed bool
	var sigErr error
	switch auth := r.Header.Values("Authorization"); len(auth) {
	case 0:
	case 1:
		sig, signed, sigErr = parseAuthorization(auth[0])
	default:
		for _, v := range auth {
			if _, ok, _ := parseAuthorization(v); ok {
				signed, sigErr = true, errMalformed
			}
		}
	}
	if !signed {
		sig, signed, sigErr = parsePresigned(r.Query)
	}
	if !signed && (!isAWSHost(r.Host) || isEKSEndpoint(r.Host)) {
		// An EKS cluster endpoint speaks the Kubernetes API with a bearer
		// token: it is the kubernetes provider's, unless SigV4-signed.
		return action.Action{}, false
	}
	a := classify(loadModels(), r, sig, sigErr)
	a.ByHost = servedByAWS(r.Host) && a.Operation != "" && a.Service != "execute-api" &&
		!(a.Service == "lambda" && a.Operation == "InvokeFunctionUrl")
	return a, true
}

// customerHosted are marks of hosts under AWS's domains that run the
// customer's own code (API Gateway stages, load balancers, EC2 instances'
// public names, S3 websites, EKS clusters, Lambda function URLs, AppSync
// and App Runner services): servers AWS does not write.
var customerHosted = []string{
	".execute-api.", ".elb.", ".compute.", ".compute-1.", "s3-website", ".eks.",
	".lambda-url.", ".appsync-api.", ".awsapprunner.",
}

// servedByAWS reports whether host is an AWS service endpoint, whose
// servers are AWS's own (found by review: an API Gateway stage is under
// amazonaws.com too, and its backend may be anything).
func servedByAWS(host string) bool {
	if !isAWSHost(host) {
		return false
	}
	for _, m := range customerHosted {
		if strings.Contains(host, m) || strings.HasPrefix(host, m[1:]) {
			return false
		}
	}
	return true
}

// isEKSEndpoint reports whether host is an EKS cluster's API server
// (<id>.<suffix>.<region>.eks.amazonaws.com), not the EKS management API
// (eks.<region>.amazonaws.com).
func isEKSEndpoint(host string) bool {
	return strings.HasSuffix(host, ".eks.amazonaws.com") || strings.HasSuffix(host, ".eks.amazonaws.com.cn")
}

func isAWSHost(host string) bool {
	for _, s := range awsSuffixes {
		if strings.HasSuffix(host, s) && len(host) > len(s) {
			return true
		}
	}
	return false
}

// request carries what classify has learned so far.
type request struct {
	r       *action.Request
	m       *models
	sig     signature
	host    hostInfo
	a       action.Action
	problem []string
}

func (q *request) fail(msg string) { q.problem = append(q.problem, msg) }

// reject is fail for what is refused before policy (see Provider.Reject).
func (q *request) reject(msg string) {
	q.fail(msg)
	q.a.Fields["rejected"] = true
}

func classify(m *models, r *action.Request, sig signature, sigErr error) action.Action {
	q := &request{r: r, m: m, sig: sig}
	q.host = parseHost(r.Host, func(p string) bool { return len(m.byEndpoint[p]) > 0 })
	q.a = action.Action{Provider: "aws", Fields: map[string]any{}}
	if sigErr != nil {
		q.fail("malformed AWS signature")
	}
	if sig.version != "" {
		q.a.AccessKeyID = sig.accessKeyID
		q.a.Fields["presigned"] = sig.presigned
		q.a.Fields["signature_version"] = sig.version
		if len(sig.signedHeaders) > 0 {
			hs := make([]any, len(sig.signedHeaders))
			for i, h := range sig.signedHeaders {
				hs[i] = h
			}
			q.a.Fields["signed_headers"] = hs
		}
	}
	q.a.Region = sig.region
	if sig.version == "4a" {
		q.a.Region = r.Header.Get("X-Amz-Region-Set")
	}
	if q.a.Region == "" {
		q.a.Region = q.host.region
	}

	cands := q.candidates()
	target, targetOK := single(r.Header.Values("X-Amz-Target"))
	if !targetOK {
		q.reject("more than one X-Amz-Target header")
	}
	form, formErr := q.form()
	actionName, actionOK := q.actionParam(form)
	cborOp := cborOperation(r)
	if (cborOp != "" || cborPath.MatchString(r.Path)) && (target != "" || actionName != "" || !actionOK) {
		// Also without the Smithy-Protocol header: a server that speaks
		// RPC v2 may route on the path alone (found by review).
		// The RPC v2 route names the operation; a target or Action= beside
		// it is a decoy the policy would read instead.
		q.reject("a Smithy RPC v2 route and X-Amz-Target or Action= both name an operation")
	}

	var a *api
	switch {
	case target != "" || !targetOK:
		prefix, _ := cutLastDot(target)
		a = pick(cands, func(a *api) bool { return a.target == prefix })
		if a == nil && sig.service == "" && !q.host.aws {
			// Neither a signature nor an endpoint name: the target
			// prefix is all there is.
			if as := m.byTarget[prefix]; len(as) > 0 {
				a = as[0]
			}
		}
		if a == nil {
			a = pick(cands, func(a *api) bool { return !a.rest() })
		}
		if a == nil && len(cands) > 0 {
			// X-Amz-Target on a REST API does not change what it does.
			q.rest(cands)
			break
		}
		if actionName != "" || !actionOK {
			// Query APIs dispatch on Action= and JSON ones on the
			// header: with both, countersign cannot tell which the
			// server reads (CloudWatch speaks both protocols).
			q.reject("both X-Amz-Target and Action= name an operation")
		}
		q.json(a, target)
		if targetOK && a != nil && a.target != "" && a.target != prefix {
			q.fail("X-Amz-Target " + truncate(prefix, 64) + " is not the " + a.id + " API's")
		}
	case actionName != "" || !actionOK:
		a = pick(cands, func(a *api) bool { return (a.protocol == protoQuery || a.protocol == protoEC2) && a.ops[actionName] })
		if a == nil {
			a = pick(cands, func(a *api) bool { return a.protocol == protoQuery || a.protocol == protoEC2 })
		}
		if a == nil {
			a = pick(cands, func(a *api) bool { return !a.rest() })
		}
		if a != nil || len(cands) == 0 {
			q.query(a, actionName, form, formErr)
			break
		}
		// Action= on a REST API (?Action=DescribeInstances on an S3
		// DELETE) does not change what the REST API does.
		q.rest(cands)
	case cborOp != "":
		a = pick(cands, func(a *api) bool { return !a.rest() })
		if a == nil && len(cands) > 0 {
			q.rest(cands)
			break
		}
		q.cbor(a, cborOp)
	default:
		if a = pick(cands, (*api).rest); a != nil || len(cands) == 0 {
			q.rest(cands)
			break
		}
		// A query or JSON API, but neither Action= nor X-Amz-Target.
		q.setAPI(cands[0], "", cands[0].protocol)
		q.fail("the request names no " + cands[0].id + " operation")
	}
	if q.a.Service == "" {
		q.a.Service = fallbackService(sig.service, q.host.endpoint)
	}
	if sig.service != "" && q.a.Fields["api"] != nil && sig.service != m.byID[q.a.Fields["api"].(string)].signing {
		q.a.Fields["signing_name"] = sig.service
	}
	switch proto := q.a.Fields["protocol"]; {
	case (proto == protoQuery || proto == protoEC2) && r.Method != http.MethodGet && r.Method != http.MethodPost:
		q.fail("the query API takes GET or POST, not " + truncate(r.Method, 16))
	case proto == protoJSON && r.Method != http.MethodPost:
		q.fail("the JSON API takes POST, not " + truncate(r.Method, 16))
	}
	if q.a.Service == "s3" && len(r.Body) > 0 && awsChunked(r) && !chunkedOperations[q.a.Operation] {
		// The chunk framing would be read as the body: DeleteObjects' keys
		// and a bucket policy would not parse (found by review). AWS takes
		// chunked signing only for object data; a compatible store that
		// took it elsewhere would act on what the policy could not read.
		q.reject("an aws-chunked body on " + truncate(q.a.Operation, 64) + ", whose body countersign reads; S3 takes chunked signing only for object data: send it unchunked")
	}
	readOnly, destructive := judge(q.a.Operation, r.Method, q.a.Fields["protocol"])
	q.a.ReadOnly, q.a.Destructive = readOnly, destructive
	if len(q.problem) > 0 {
		q.a.ParseError = strings.Join(q.problem, "; ")
		// What the server will do is not known for sure: not a read.
		q.a.ReadOnly = false
	}
	return q.a
}

// candidates lists the APIs the request may belong to, most likely first.
// AWS routes a request by its endpoint name and then rejects it unless the
// credential scope names the endpoint's signing name, so on an AWS endpoint
// the name decides and the signature narrows; elsewhere (a custom endpoint
// URL, an S3-compatible store) the signing name is all there is.
func (q *request) candidates() []*api {
	var out []*api
	if q.host.aws {
		for _, a := range q.m.byEndpoint[q.host.endpoint] {
			if q.sig.service == "" || a.signing == q.sig.service {
				out = append(out, a)
			}
		}
		if len(out) == 0 {
			out = q.m.byEndpoint[q.host.endpoint]
		}
	}
	if len(out) == 0 && q.sig.service != "" {
		out = q.m.bySigning[q.sig.service]
	}
	return out
}

func pick(as []*api, ok func(*api) bool) *api {
	for _, a := range as {
		if ok(a) {
			return a
		}
	}
	return nil
}

func single(vs []string) (string, bool) {
	switch len(vs) {
	case 0:
		return "", true
	case 1:
		return vs[0], true
	}
	return "", false
}

// form parses a URL-encoded body, the query protocol's usual carrier.
func (q *request) form() (url.Values, error) {
	ct := q.r.Header.Get("Content-Type")
	// As servers read it: a charset given twice must not hide the form,
	// and the Action= in it (found by review).
	mt := action.MediaType(ct)
	// A body without a Content-Type is read as a form too: a query API
	// may well accept it, and the policy must see the Action it names.
	if mt != "application/x-www-form-urlencoded" && ct != "" || len(q.r.Body) == 0 {
		return nil, nil
	}
	vals, err := url.ParseQuery(string(q.r.Body))
	return action.ValidKeys(vals), err
}

// actionParam returns the query protocol's Action, from the body or the
// query string. ok is false when it is given more than once with different
// values, since AWS and the policy could then read different ones.
func (q *request) actionParam(form url.Values) (string, bool) {
	var name string
	// Operation= is the query protocol's older spelling of Action=, still
	// honoured by some APIs (Auto Scaling's guide says so).
	for _, vs := range [][]string{form["Action"], q.r.Query["Action"], form["Operation"], q.r.Query["Operation"]} {
		for _, v := range vs {
			if name != "" && v != name {
				return "", false
			}
			name = v
		}
	}
	return name, true
}

var cborPath = regexp.MustCompile(`^/service/[A-Za-z0-9_.]+/operation/([A-Za-z0-9_]+)$`)

// cborOperation reads the Smithy RPC v2 CBOR route
// /service/{ServiceName}/operation/{OperationName}.
func cborOperation(r *action.Request) string {
	if !strings.EqualFold(r.Header.Get("Smithy-Protocol"), "rpc-v2-cbor") {
		return ""
	}
	if m := cborPath.FindStringSubmatch(r.Path); m != nil {
		return m[1]
	}
	return ""
}

var opName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,127}$`)

// setAPI records the API and an operation name a client sent, spelled as
// the model spells it.
func (q *request) setAPI(a *api, op, protocol string) {
	q.a.Fields["protocol"] = protocol
	if a != nil {
		q.a.Service = a.service
		q.a.Fields["api"] = a.id
		if a.version != "" {
			q.a.Fields["api_version"] = a.version
		}
	}
	if op == "" {
		return
	}
	if !opName.MatchString(op) {
		q.fail("operation name " + strings.ToValidUTF8(truncate(op, 64), "?") + " is not valid")
		return
	}
	if a != nil && !a.ops[op] {
		if canon, ok := a.opByFold(op); ok {
			q.a.Fields["operation_sent"] = op
			op = canon
		} else {
			q.a.Fields["known_operation"] = false
		}
	}
	q.a.Operation = op
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (q *request) json(a *api, target string) {
	_, op := cutLastDot(target)
	q.setAPI(a, op, protoJSON)
	if q.r.BodyTruncated {
		q.fail("the body is larger than the inspection limit; params were not read")
		return
	}
	p, err := jsonParams(q.r.Body)
	if err != nil {
		q.fail("the body is not a JSON object")
		return
	}
	if len(p) > 0 {
		q.a.Params = p
		var rs resourceSet
		rs.jsonParams(p)
		q.a.Resources = rs.list
	}
}

func (q *request) query(a *api, op string, form url.Values, formErr error) {
	protocol := protoQuery
	if a != nil && a.protocol == protoEC2 {
		protocol = protoEC2
	}
	q.setAPI(a, op, protocol)
	if op == "" {
		q.reject("conflicting Action parameters")
	}
	if v := q.r.Query.Get("Version"); v != "" {
		q.a.Fields["api_version"] = v
	}
	if v := form.Get("Version"); v != "" {
		q.a.Fields["api_version"] = v
	}
	if q.r.BodyTruncated && form != nil {
		q.fail("the body is larger than the inspection limit; params were not all read")
	}
	if formErr != nil {
		q.fail("the form body is malformed")
	}
	if k, ok := conflictingParam(q.r.Query, form); ok {
		// Which copy AWS reads is not documented: refuse rather than
		// decide on one (found by review: SkipFinalSnapshot=true in the
		// query and =false in the body showed the policy false).
		q.reject("the parameter " + truncate(k, 64) + " is given more than once, with different values")
	}
	p := formParams(q.r.Query, form)
	if len(p) > 0 {
		q.a.Params = p
		var rs resourceSet
		rs.formParams(p)
		q.a.Resources = rs.list
	}
}

func (q *request) cbor(a *api, op string) {
	q.setAPI(a, op, protoCBOR)
}

// rest finds the REST route among the candidate APIs.
func (q *request) rest(cands []*api) {
	segs, ok := pathSegments(q.r)
	if !ok {
		q.fail("the path is not validly escaped")
	}
	var first *api
	for _, a := range cands {
		if !a.rest() {
			continue
		}
		if first == nil {
			first = a
		}
		s := segs
		bucket := ""
		if a.id == "s3" && (q.host.aws && q.host.prefix != "" && q.host.endpoint == "s3" || q.host.compatBucket != "") {
			// Virtual-hosted style: the bucket is in the name.
			bucket = q.host.prefix
			if !q.host.aws {
				bucket = q.host.compatBucket
			}
			s = append([]string{bucket}, segs...)
			if len(s) == 2 && s[1] == "" {
				s = s[:1]
			}
		}
		rt, labels := a.match(q.r.Method, s, q.r.Query, q.r.Header)
		if rt == nil && len(s) > 1 && s[len(s)-1] == "" {
			s = s[:len(s)-1]
			rt, labels = a.match(q.r.Method, s, q.r.Query, q.r.Header)
		}
		if rt == nil {
			continue
		}
		q.setAPI(a, rt.op, a.protocol)
		q.restParams(a, rt, labels)
		if a.ambiguous(rt, q.r.Method, s, q.r.Query, q.r.Header) {
			q.reject("the query names more than one " + a.id + " operation")
		}
		return
	}
	if q.invocation() {
		return
	}
	if first != nil {
		q.setAPI(first, "", first.protocol)
		q.fail("no " + first.id + " operation matches " + q.r.Method + " " + truncate(q.r.RawPath, 200))
		return
	}
	q.a.Fields["protocol"] = "rest"
}

// invocation names the calls that reach a customer's own code rather than
// an AWS API, whose paths no model lists: API Gateway's execute-api
// endpoints ({api-id}.execute-api.{region}.amazonaws.com/{stage}/…, the IAM
// action execute-api:Invoke) and Lambda function URLs
// ({url-id}.lambda-url.{region}.on.aws, lambda:InvokeFunctionUrl).
func (q *request) invocation() bool {
	host := q.r.Host
	switch {
	case q.host.aws && q.host.endpoint == "execute-api" && q.host.prefix != "":
		stage, rest, _ := strings.Cut(strings.TrimPrefix(q.r.Path, "/"), "/")
		// WebSocket APIs' @connections calls are made below the stage.
		if segs, _ := pathSegments(q.r); len(segs) > 1 {
			for _, a := range q.m.byEndpoint["execute-api"] {
				if rt, labels := a.match(q.r.Method, segs[1:], q.r.Query, q.r.Header); rt != nil {
					q.setAPI(a, rt.op, a.protocol)
					q.restParams(a, rt, labels)
					return true
				}
			}
		}
		q.a.Service, q.a.Operation = "execute-api", "Invoke"
		// The IAM resource form: api-id/stage/METHOD/path.
		q.a.Resources = []string{q.host.prefix + "/" + stage + "/" + q.r.Method + "/" + rest}
	case strings.HasSuffix(host, ".on.aws") && strings.Contains(host, ".lambda-url."):
		q.a.Service, q.a.Operation = "lambda", "InvokeFunctionUrl"
		id, _, _ := strings.Cut(host, ".")
		q.a.Resources = []string{id}
	default:
		return false
	}
	q.a.Fields["protocol"] = "rest"
	return true
}

func (q *request) restParams(a *api, rt *route, labels map[string]string) {
	p := map[string]any{}
	var rs resourceSet
	for _, k := range sortedKeys(labels) {
		p[k] = labels[k]
	}
	for k, vs := range q.r.Query {
		if isAuthParam(k) {
			continue
		}
		if _, clash := p[k]; clash {
			continue
		}
		if len(vs) == 1 {
			p[k] = vs[0]
			continue
		}
		list := make([]any, len(vs))
		for i, v := range vs {
			list[i] = v
		}
		p[k] = list
	}
	if a.id == "s3" && labels["Bucket"] != "" {
		b := labels["Bucket"]
		if k := labels["Key"]; k != "" {
			rs.add(b + "/" + k)
		} else {
			rs.add(b)
		}
		if rt.op == "DeleteObjects" {
			q.deleteObjects(p, &rs, b)
		}
		if src := q.r.Header.Get("X-Amz-Copy-Source"); src != "" {
			if u, err := url.PathUnescape(src); err == nil {
				src = u
			}
			p["CopySource"] = src
			rs.add(strings.TrimPrefix(src, "/"))
		}
	} else {
		for _, k := range sortedKeys(labels) {
			rs.add(labels[k])
		}
	}
	if len(p) > 0 {
		q.a.Params = p
	}
	q.a.Resources = rs.list
}

func (q *request) deleteObjects(p map[string]any, rs *resourceSet, bucket string) {
	if q.r.BodyTruncated {
		q.fail("the body is larger than the inspection limit; not every key was read")
	}
	keys, err := deleteObjectsKeys(q.r.Body)
	if err != nil && !q.r.BodyTruncated {
		q.fail("the DeleteObjects body is malformed")
	}
	list := make([]any, len(keys))
	for i, k := range keys {
		list[i] = k
		rs.add(bucket + "/" + k)
	}
	p["Objects"] = list
}

// pathSegments splits the escaped path and unescapes each segment, so an
// escaped slash (a Lambda ARN in {FunctionName}) stays inside its label.
func pathSegments(r *action.Request) ([]string, bool) {
	raw := r.RawPath
	if raw == "" {
		raw = (&url.URL{Path: r.Path}).EscapedPath()
	}
	raw = strings.TrimPrefix(raw, "/")
	if raw == "" {
		return nil, true
	}
	parts := strings.Split(raw, "/")
	ok := true
	for i, s := range parts {
		u, err := url.PathUnescape(s)
		if err != nil {
			ok = false
			continue
		}
		parts[i] = u
	}
	return parts, ok
}

func cutLastDot(s string) (string, string) {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return "", s
}

// fallbackService names the service of a request no API in the table
// matched: the signing name, else the endpoint prefix.
func fallbackService(signing, endpoint string) string {
	if signing != "" {
		return signing
	}
	return endpoint
}

// opByFold finds an operation whatever the case it was sent in.
func (a *api) opByFold(op string) (string, bool) {
	for name := range a.ops {
		if strings.EqualFold(name, op) {
			return name, true
		}
	}
	return "", false
}

// Operation name prefixes that read and that destroy. The models carry no
// such marks, so the verbs decide, as they do for IAM's access levels.
var (
	readPrefixes        = []string{"Describe", "List", "Get", "Head", "Search", "Query", "Scan", "BatchGet", "Lookup", "Select", "View", "Preview", "Estimate", "Validate", "Verify", "Check", "Detect", "Simulate"}
	destructivePrefixes = []string{"Delete", "Terminate", "Remove", "Purge", "Drop", "Destroy", "Deregister", "Unregister", "Erase", "Wipe", "Truncate", "Abort", "Empty", "Deprovision", "Discard", "BatchDelete", "BatchRemove", "Detach", "Release", "Decommission"}
)

// readNamedWrites are operations named like reads that create users,
// credentials or access (found by review): Redshift's GetClusterCredentials
// creates the database user and adds it to groups, Lightsail's
// GetInstanceAccessDetails makes an SSH key for the instance, STS's
// GetFederationToken mints credentials.
var readNamedWrites = map[string]bool{
	"GetClusterCredentials":        true,
	"GetClusterCredentialsWithIAM": true,
	"GetInstanceAccessDetails":     true,
	"GetFederationToken":           true,
	// Redshift Serverless's GetClusterCredentials; Cognito identities.
	"GetCredentials":                     true,
	"GetId":                              true,
	"GetOpenIdTokenForDeveloperIdentity": true,
	// More that mint credentials (found by review): Cognito's for an
	// identity, STS's session token, ECR's and CodeArtifact's registry
	// tokens (docker login), GameLift's access to its hosts, and IAM
	// Identity Center's role credentials (a REST GET).
	"GetCredentialsForIdentity": true,
	"GetOpenIdToken":            true,
	"GetSessionToken":           true,
	"GetAuthorizationToken":     true,
	"GetInstanceAccess":         true,
	"GetComputeAccess":          true,
	"GetComputeAuthToken":       true,
	"GetRoleCredentials":        true,
	// And (found by the review after): S3 Access Grants, Lake Formation,
	// EMR and its containers, DataZone, Managed Grafana's keys, a SCEP
	// challenge password, and the tokens of the services that name an
	// operation so.
	"GetDataAccess":                        true,
	"GetTemporaryGlueTableCredentials":     true,
	"GetTemporaryGluePartitionCredentials": true,
	"GetClusterSessionCredentials":         true,
	"GetManagedEndpointSessionCredentials": true,
	"GetEnvironmentCredentials":            true,
	"GetProgrammaticAccessCredentials":     true,
	"GetChallengePassword":                 true,
	"GetAccessToken":                       true,
	"GetToken":                             true,
	// URLs that carry access (found by the review after that): QuickSight
	// embedding and console sessions, DataZone's portal login, Mainframe
	// Modernization's signed URL, presigned uploads, video stream
	// sessions, and Kinesis Video's TURN credentials.
	"GetDashboardEmbedUrl":       true,
	"GetSessionEmbedUrl":         true,
	"GetIamPortalLoginUrl":       true,
	"GetSignedBluinsightsUrl":    true,
	"GetEvidenceFileUploadUrl":   true,
	"GetFileUploadURL":           true,
	"GetHLSStreamingSessionURL":  true,
	"GetDASHStreamingSessionURL": true,
	"GetIceServerConfig":         true,
	// And (found by a later review): S3 Express One Zone's session
	// credentials (a REST GET, GET /{Bucket}?session), FinSpace's data view
	// access.
	"CreateSession":                    true,
	"GetExternalDataViewAccessDetails": true,
}

// destructiveWrites are operations not named for it that can delete
// data: S3 lifecycle rules expire a bucket's objects (found by review).
var destructiveWrites = map[string]bool{
	"PutBucketLifecycle": true, "PutBucketLifecycleConfiguration": true,
	// And data expired by a rule (noted by a later review): DynamoDB's
	// time to live, CloudWatch Logs' retention, ECR's lifecycle.
	"UpdateTimeToLive": true, "PutRetentionPolicy": true, "PutLifecyclePolicy": true,
}

// credentialReads are operations named like the mints above that read
// without granting anything: WAF's change token (a concurrency check),
// Secrets Manager's random password (generated, not stored), and reads of
// secrets that exist already, which policies judge as reads of secrets.
var credentialReads = map[string]bool{
	"GetChangeToken":                          true,
	"GetRandomPassword":                       true,
	"GetRelationalDatabaseMasterUserPassword": true,
}

// mintsAccess reports whether op hands out credentials or access, whatever
// its verb: the operations listed, any that assumes a role (Deadline's
// AssumeQueueRoleForUser, a REST GET, returns the role's credentials) or
// returns a presigned URL (EMR's GetOnClusterAppUIPresignedURL), and reads
// named for the tokens and credentials they return, so that an operation
// added after the table was made is not taken for a read (found by review).
func mintsAccess(op string) bool {
	switch {
	case readNamedWrites[op]:
		return true
	case credentialReads[op]:
		return false
	case hasVerb(op, "Assume"), strings.Contains(op, "Presigned"), strings.Contains(op, "PreSigned"):
		return true
	case !hasVerb(op, "Get"):
		return false
	}
	return strings.HasSuffix(op, "Credentials") || strings.HasSuffix(op, "Token") ||
		strings.Contains(op, "AccessToken") || strings.Contains(op, "AuthToken") || strings.Contains(op, "SessionToken") ||
		strings.Contains(op, "TokenFor") || strings.Contains(op, "CredentialsFor")
}

// judge gives the classifier's opinion of an operation: one that mints
// credentials or access is a write, whatever its name or method; a REST
// GET or HEAD reads; otherwise the verb decides. An operation nobody could name is
// neither.
func judge(op, method string, protocol any) (readOnly, destructive bool) {
	rest := protocol == protoRESTJSON || protocol == protoRESTXML || protocol == "rest"
	if op == "" {
		return false, rest && method == http.MethodDelete
	}
	for _, p := range destructivePrefixes {
		if hasVerb(op, p) {
			return false, true
		}
	}
	if destructiveWrites[op] {
		return false, true
	}
	if mintsAccess(op) {
		return false, false
	}
	if rest && (method == http.MethodGet || method == http.MethodHead) {
		return true, false
	}
	if rest && method == http.MethodDelete {
		return false, true
	}
	for _, p := range readPrefixes {
		if hasVerb(op, p) {
			return true, false
		}
	}
	return false, false
}

// hasVerb reports whether op starts with the word verb (GetObject starts
// with Get; Getaway would not).
func hasVerb(op, verb string) bool {
	if !strings.HasPrefix(op, verb) {
		return false
	}
	rest := op[len(verb):]
	return rest == "" || rest[0] >= 'A' && rest[0] <= 'Z' || rest[0] >= '0' && rest[0] <= '9'
}

// chunkedOperations are the S3 operations whose body is object data, which
// clients may send aws-chunked.
var chunkedOperations = map[string]bool{"PutObject": true, "UploadPart": true, "WriteGetObjectResponse": true}

// awsChunked reports whether the body carries SigV4's chunk framing.
func awsChunked(r *action.Request) bool {
	return slices.Contains(action.Codings(r.Header), "aws-chunked") ||
		strings.HasPrefix(strings.ToUpper(r.Header.Get("X-Amz-Content-Sha256")), "STREAMING-")
}
