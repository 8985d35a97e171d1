//go:build e2e

package e2e

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// awsPolicy denies by the classified action, not by raw HTTP: the AWS
// provider must have named the service, operation and resources for any of
// these rules to fire.
const awsPolicy = `package countersign

deny contains {"id": "AWS-E2E-1", "msg": sprintf("terminating %v is not allowed", [input.action.resources])} if {
	input.action.service == "ec2"
	input.action.operation == "TerminateInstances"
}

deny contains {"id": "AWS-E2E-2", "msg": sprintf("deleting S3 objects (%v) is not allowed", [input.action.resources])} if {
	input.action.service == "s3"
	input.action.operation in {"DeleteObject", "DeleteObjects"}
}

deny contains {"id": "AWS-E2E-3", "msg": sprintf("%s:%s is destructive", [input.action.service, input.action.operation])} if {
	input.action.provider == "aws"
	input.action.service in {"dynamodb", "iam", "lambda"}
	input.action.destructive
}
`

// awsHosts resolve to the fake upstream: the endpoints the AWS CLI v1 and
// v2 use for us-east-1 (S3 virtual-hosted and path-style).
var awsHosts = []string{
	"s3.amazonaws.com", "s3.us-east-1.amazonaws.com",
	"mybucket.s3.amazonaws.com", "mybucket.s3.us-east-1.amazonaws.com",
	"dynamodb.us-east-1.amazonaws.com", "iam.amazonaws.com",
	"lambda.us-east-1.amazonaws.com", "sts.us-east-1.amazonaws.com", "sts.amazonaws.com",
}

// reached counts the requests the fake upstream received whose body or
// target header contains s.
func (w *world) reached(s string) int {
	n := 0
	for _, r := range w.up.Requests() {
		if bytes.Contains(r.Body, []byte(s)) || strings.Contains(r.Header.Get("X-Amz-Target"), s) {
			n++
		}
	}
	return n
}

// wantDenied checks that the AWS CLI failed and printed botocore's error
// line with countersign's reason. Botocore adds "(reached max retries: 0)"
// whenever AWS_MAX_ATTEMPTS=1, retryable error or not. op is a regular
// expression.
func wantDenied(t *testing.T, r result, code, op, reason string) {
	t.Helper()
	line := regexp.MustCompile(regexp.QuoteMeta("An error occurred ("+code+") when calling the ") + op + " operation" +
		`( \(reached max retries: 0\))?: ` + regexp.QuoteMeta("countersign: denied by policy "+reason))
	if r.code == 0 || !line.MatchString(r.stderr) {
		t.Errorf("aws did not print the denial %q: exit %d\nstdout %s\nstderr %s", line, r.code, r.stdout, r.stderr)
	}
}

func TestAWSEC2DescribeAllowedTerminateDenied(t *testing.T) {
	w := newWorld(t, awsPolicy, "", awsHosts...)
	r := w.run("run", "--", "aws", "ec2", "describe-instances", "--output", "text")
	if r.code != 0 || !strings.Contains(r.stdout, "i-0abc") {
		t.Fatalf("aws ec2 describe-instances: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := w.reached("Action=DescribeInstances"); n != 1 {
		t.Errorf("the fake saw %d DescribeInstances calls, want 1", n)
	}

	r = w.run("run", "--", "aws", "ec2", "terminate-instances", "--instance-ids", "i-0abc")
	wantDenied(t, r, "UnauthorizedOperation", "TerminateInstances", "AWS-E2E-1: terminating [\"i-0abc\"] is not allowed")
	if n := w.reached("TerminateInstances"); n != 0 {
		t.Errorf("the denied TerminateInstances reached the upstream %d times", n)
	}
	audit := w.auditLog()
	for _, s := range []string{`"operation":"TerminateInstances"`, `"service":"ec2"`, `"destructive":true`, `"resources":["i-0abc"]`} {
		if !strings.Contains(audit, s) {
			t.Errorf("the audit log lacks %s", s)
		}
	}
}

// TestAWSDenialIsNotRetried runs the CLI with its own retry settings (the
// harness pins AWS_MAX_ATTEMPTS=1 elsewhere): a denial must reach the proxy
// once, or an agent would see every denial several times over.
func TestAWSDenialIsNotRetried(t *testing.T) {
	w := newWorld(t, awsPolicy, "", awsHosts...)
	for _, mode := range []string{"legacy", "standard"} {
		r := w.run("run", "--", "env", "-u", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE="+mode,
			"aws", "ec2", "terminate-instances", "--instance-ids", "i-0abc")
		wantDenied(t, r, "UnauthorizedOperation", "TerminateInstances", "AWS-E2E-1")
		r = w.run("run", "--", "env", "-u", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE="+mode,
			"aws", "dynamodb", "delete-table", "--table-name", "orders")
		wantDenied(t, r, "AccessDeniedException", "DeleteTable", "AWS-E2E-3")
	}
	audit := w.auditLog()
	for _, op := range []string{"TerminateInstances", "DeleteTable"} {
		if n := countDecisions(audit, op); n != 2 {
			t.Errorf("%s was decided %d times for 2 CLI runs, want 2 (no retries)", op, n)
		}
	}
}

func countDecisions(audit, op string) int {
	n := 0
	for _, line := range strings.Split(audit, "\n") {
		if strings.Contains(line, `"event":"decision"`) && strings.Contains(line, `"operation":"`+op+`"`) {
			n++
		}
	}
	return n
}

func TestAWSS3ListAllowedDeletesDenied(t *testing.T) {
	w := newWorld(t, awsPolicy, "", awsHosts...)
	r := w.run("run", "--", "aws", "s3", "ls", "s3://mybucket/logs/")
	if r.code != 0 || !strings.Contains(r.stdout, "a.txt") || !strings.Contains(r.stdout, "b.txt") {
		t.Fatalf("aws s3 ls: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = w.run("run", "--", "aws", "s3", "rm", "s3://mybucket/logs/a.txt")
	wantDenied(t, r, "AccessDenied", "DeleteObject", `AWS-E2E-2: deleting S3 objects (["mybucket/logs/a.txt"]) is not allowed`)

	// The CLI deletes key by key; DeleteObjects would be denied as well.
	r = w.run("run", "--", "aws", "s3", "rm", "--recursive", "s3://mybucket/logs/")
	wantDenied(t, r, "AccessDenied", "DeleteObjects?", "AWS-E2E-2")

	r = w.run("run", "--", "aws", "s3api", "delete-objects", "--bucket", "mybucket",
		"--delete", `{"Objects":[{"Key":"logs/a.txt"},{"Key":"logs/b.txt"}]}`)
	wantDenied(t, r, "AccessDenied", "DeleteObjects", `AWS-E2E-2: deleting S3 objects (["mybucket", "mybucket/logs/a.txt", "mybucket/logs/b.txt"]) is not allowed`)

	if n := w.up.Count("DELETE", ""); n != 0 {
		t.Errorf("the upstream saw %d DELETEs, want 0", n)
	}
	for _, rec := range w.up.Requests() {
		if rec.Method == "POST" && strings.Contains(rec.Query, "delete") {
			t.Errorf("a DeleteObjects call reached the upstream: %s %s?%s", rec.Method, rec.Path, rec.Query)
		}
	}
}

func TestAWSDynamoDBDescribeAllowedDeleteDenied(t *testing.T) {
	w := newWorld(t, awsPolicy, "", awsHosts...)
	r := w.run("run", "--", "aws", "dynamodb", "describe-table", "--table-name", "orders", "--output", "text")
	if r.code != 0 || !strings.Contains(r.stdout, "ACTIVE") {
		t.Fatalf("aws dynamodb describe-table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = w.run("run", "--", "aws", "dynamodb", "delete-table", "--table-name", "orders")
	wantDenied(t, r, "AccessDeniedException", "DeleteTable", "AWS-E2E-3: dynamodb:DeleteTable is destructive")
	if n := w.reached("DeleteTable"); n != 0 {
		t.Errorf("the denied DeleteTable reached the upstream %d times", n)
	}
	if n := w.reached("DescribeTable"); n != 1 {
		t.Errorf("the fake saw %d DescribeTable calls, want 1", n)
	}
}

// TestAWSDenialFormats checks the two remaining protocols' error shapes
// with the real CLI: the query protocol (IAM) and rest-json (Lambda).
func TestAWSDenialFormats(t *testing.T) {
	w := newWorld(t, awsPolicy, "", awsHosts...)
	r := w.run("run", "--", "aws", "iam", "delete-user", "--user-name", "alice")
	wantDenied(t, r, "AccessDenied", "DeleteUser", "AWS-E2E-3: iam:DeleteUser is destructive")
	r = w.run("run", "--", "aws", "lambda", "delete-function", "--function-name", "billing")
	wantDenied(t, r, "AccessDeniedException", "DeleteFunction", "AWS-E2E-3: lambda:DeleteFunction is destructive")
	if n := w.up.Count("", ""); n != 0 {
		t.Errorf("the upstream saw %d requests, want 0", n)
	}
}
