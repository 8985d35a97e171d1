package aws

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTableCoversCLIServices checks that the generated table parses and
// covers the services the AWS CLI is used with most, each with an
// operation an agent could do damage with, and with its protocol.
func TestTableCoversCLIServices(t *testing.T) {
	m := loadModels()
	if len(m.apis) < 380 || m.ops < 15000 {
		t.Errorf("the table holds %d APIs and %d operations; a regeneration lost some", len(m.apis), m.ops)
	}
	tests := []struct{ api, service, protocol, op string }{
		{"ec2", "ec2", "ec2", "TerminateInstances"},
		{"s3", "s3", "rest-xml", "DeleteObjects"},
		{"s3control", "s3", "rest-xml", "DeletePublicAccessBlock"},
		{"iam", "iam", "query", "DeleteUser"},
		{"sts", "sts", "query", "AssumeRole"},
		{"lambda", "lambda", "rest-json", "DeleteFunction"},
		{"dynamodb", "dynamodb", "json", "DeleteTable"},
		{"rds", "rds", "query", "DeleteDBInstance"},
		{"ecs", "ecs", "json", "DeleteCluster"},
		{"eks", "eks", "rest-json", "DeleteCluster"},
		{"ecr", "ecr", "json", "DeleteRepository"},
		{"cloudformation", "cloudformation", "query", "DeleteStack"},
		{"monitoring", "cloudwatch", "query", "DeleteAlarms"},
		{"logs", "logs", "json", "DeleteLogGroup"},
		{"sqs", "sqs", "json", "PurgeQueue"},
		{"sns", "sns", "query", "DeleteTopic"},
		{"kms", "kms", "json", "ScheduleKeyDeletion"},
		{"secretsmanager", "secretsmanager", "json", "DeleteSecret"},
		{"ssm", "ssm", "json", "DeleteParameter"},
		{"route53", "route53", "rest-xml", "ChangeResourceRecordSets"},
		{"cloudfront", "cloudfront", "rest-xml", "DeleteDistribution"},
		{"elasticloadbalancingv2", "elasticloadbalancing", "query", "DeleteLoadBalancer"},
		{"autoscaling", "autoscaling", "query", "DeleteAutoScalingGroup"},
		{"apigateway", "apigateway", "rest-json", "DeleteRestApi"},
		{"events", "events", "json", "DeleteRule"},
		{"states", "states", "json", "DeleteStateMachine"},
		{"kinesis", "kinesis", "json", "DeleteStream"},
		{"glue", "glue", "json", "DeleteDatabase"},
		{"athena", "athena", "json", "DeleteWorkGroup"},
		{"organizations", "organizations", "json", "RemoveAccountFromOrganization"},
		{"cognito-idp", "cognito-idp", "json", "DeleteUserPool"},
		{"elasticache", "elasticache", "query", "DeleteCacheCluster"},
		{"elasticfilesystem", "elasticfilesystem", "rest-json", "DeleteFileSystem"},
		{"backup", "backup", "rest-json", "DeleteBackupVault"},
		{"codebuild", "codebuild", "json", "DeleteProject"},
		{"acm", "acm", "json", "DeleteCertificate"},
		{"wafv2", "wafv2", "json", "DeleteWebACL"},
		{"redshift", "redshift", "query", "DeleteCluster"},
		{"bedrock", "bedrock", "rest-json", "DeleteCustomModel"},
		{"sagemaker", "sagemaker", "json", "DeleteEndpoint"},
		{"opensearch", "es", "rest-json", "DeleteDomain"},
		{"ce", "ce", "json", "GetCostAndUsage"},
	}
	for _, tt := range tests {
		a := m.byID[tt.api]
		if a == nil {
			t.Errorf("API %s is not in the table", tt.api)
			continue
		}
		got := [3]string{a.service, a.protocol, ""}
		if a.ops[tt.op] {
			got[2] = tt.op
		}
		if diff := cmp.Diff([3]string{tt.service, tt.protocol, tt.op}, got); diff != "" {
			t.Errorf("API %s (-want +got):\n%s", tt.api, diff)
		}
	}
}

// TestRESTRoutesAllMatch classifies a request built from every REST route
// in the table (labels filled in, query conditions set) and checks that it
// comes back as that route's operation or one at least as specific: the
// most-specific-first order must not hide any operation.
func TestRESTRoutesAllMatch(t *testing.T) {
	m := loadModels()
	n := 0
	for _, a := range m.apis {
		for method, routes := range a.routes {
			for _, rt := range routes {
				var segs []string
				for i, s := range rt.segs {
					switch {
					case s.label == "":
						segs = append(segs, s.literal)
					case i == rt.greedy:
						segs = append(segs, "g1", "g2")
					default:
						segs = append(segs, "v-"+s.label)
					}
				}
				q := url.Values{}
				for _, c := range rt.query {
					q.Set(c.key, c.value)
				}
				h := http.Header{}
				for _, k := range rt.headers {
					h.Set(k, "x")
				}
				got, labels := a.match(method, segs, q, h)
				n++
				if got == nil {
					t.Errorf("%s: %s %s: no match", a.id, method, strings.Join(segs, "/"))
					continue
				}
				if got.op != rt.op && compareRoutes(got, rt) > 0 {
					t.Errorf("%s: %s /%s matched %s, less specific than %s", a.id, method, strings.Join(segs, "/"), got.op, rt.op)
				}
				if got.op == rt.op {
					for i, s := range rt.segs {
						want := "v-" + s.label
						if i == rt.greedy {
							want = "g1/g2"
						}
						if s.label != "" && labels[s.label] != want {
							t.Errorf("%s %s: label %s = %q, want %q", a.id, rt.op, s.label, labels[s.label], want)
						}
					}
				}
			}
		}
	}
	if n < 7500 {
		t.Errorf("only %d REST routes", n)
	}
}

func TestParseRoute(t *testing.T) {
	r := parseRoute("X", "/{Bucket}/{Key+}?uploads&list-type=2&v={Ver}", []string{"!x-amz-copy-source"})
	want := &route{
		op:      "X",
		segs:    []segment{{label: "Bucket"}, {label: "Key"}},
		greedy:  1,
		query:   []queryCond{{key: "uploads", anyValue: true}, {key: "list-type", value: "2"}, {key: "v", value: "{Ver}", anyValue: true}},
		headers: []string{"x-amz-copy-source"},
	}
	if diff := cmp.Diff(want, r, cmp.AllowUnexported(route{}, segment{}, queryCond{})); diff != "" {
		t.Errorf("parseRoute mismatch (-want +got):\n%s", diff)
	}
}

func TestParseHost(t *testing.T) {
	known := func(p string) bool { return len(loadModels().byEndpoint[p]) > 0 }
	tests := []struct {
		give string
		want hostInfo
	}{
		{"ec2.us-east-1.amazonaws.com", hostInfo{aws: true, endpoint: "ec2", region: "us-east-1"}},
		{"iam.amazonaws.com", hostInfo{aws: true, endpoint: "iam", region: "us-east-1"}},
		{"ec2.cn-north-1.amazonaws.com.cn", hostInfo{aws: true, endpoint: "ec2", region: "cn-north-1", china: true}},
		{"iam.amazonaws.com.cn", hostInfo{aws: true, endpoint: "iam", region: "cn-north-1", china: true}},
		{"s3.amazonaws.com", hostInfo{aws: true, endpoint: "s3", region: "us-east-1"}},
		{"my.bucket.s3.eu-west-1.amazonaws.com", hostInfo{aws: true, endpoint: "s3", region: "eu-west-1", prefix: "my.bucket"}},
		{"bucket.s3-us-west-2.amazonaws.com", hostInfo{aws: true, endpoint: "s3", region: "us-west-2", prefix: "bucket"}},
		{"bucket.s3-fips-us-gov-west-1.amazonaws.com", hostInfo{aws: true, endpoint: "s3", region: "us-gov-west-1", prefix: "bucket"}},
		{"shop.s3.eusc-de-east-1.amazonaws.eu", hostInfo{aws: true, endpoint: "s3", region: "eusc-de-east-1", prefix: "shop"}},
		{"bucket.s3.dualstack.us-west-2.amazonaws.com", hostInfo{aws: true, endpoint: "s3", region: "us-west-2", prefix: "bucket"}},
		{"bucket.s3-accelerate.amazonaws.com", hostInfo{aws: true, endpoint: "s3", region: "us-east-1", prefix: "bucket"}},
		{"s3-external-1.amazonaws.com", hostInfo{aws: true, endpoint: "s3", region: "us-east-1"}},
		{"dynamodb-fips.us-gov-west-1.amazonaws.com", hostInfo{aws: true, endpoint: "dynamodb", region: "us-gov-west-1"}},
		{"runtime.sagemaker.us-east-1.amazonaws.com", hostInfo{aws: true, endpoint: "runtime.sagemaker", region: "us-east-1"}},
		{"123456789012.s3-control.us-east-1.amazonaws.com", hostInfo{aws: true, endpoint: "s3-control", region: "us-east-1", prefix: "123456789012"}},
		{"a1b2c3.execute-api.us-east-1.amazonaws.com", hostInfo{aws: true, endpoint: "execute-api", region: "us-east-1", prefix: "a1b2c3"}},
		{"ec2.us-east-1.api.aws", hostInfo{aws: true, endpoint: "ec2", region: "us-east-1"}},
		{"example.com", hostInfo{}},
		{"amazonaws.com", hostInfo{}},
		// VPC interface endpoints (PrivateLink).
		{"bucket.vpce-0abc123-abcdefgh.s3.us-east-1.vpce.amazonaws.com", hostInfo{aws: true, endpoint: "s3", region: "us-east-1"}},
		{"prod-backups.bucket.vpce-0abc123-abcdefgh.s3.us-east-1.vpce.amazonaws.com", hostInfo{aws: true, endpoint: "s3", region: "us-east-1", prefix: "prod-backups"}},
		{"control.vpce-0abc123-abcdefgh.s3.us-east-1.vpce.amazonaws.com", hostInfo{aws: true, endpoint: "s3-control", region: "us-east-1"}},
		{"vpce-0abc123-abcdefgh.ec2.eu-west-1.vpce.amazonaws.com", hostInfo{aws: true, endpoint: "ec2", region: "eu-west-1"}},
		{"vpce-0abc123-abcdefgh-eu-west-1a.ec2.eu-west-1.vpce.amazonaws.com", hostInfo{aws: true, endpoint: "ec2", region: "eu-west-1"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, parseHost(tt.give, known), cmp.AllowUnexported(hostInfo{})); diff != "" {
			t.Errorf("parseHost(%q) mismatch (-want +got):\n%s", tt.give, diff)
		}
	}
}
