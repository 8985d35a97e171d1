package aws

import (
	"testing"

	"github.com/countersign/countersign/action"
)

func BenchmarkParseTable(b *testing.B) {
	for b.Loop() {
		parseTable(table)
	}
}

func BenchmarkClassify(b *testing.B) {
	p := New(Options{})
	for _, bb := range []struct {
		name string
		r    *action.Request
	}{
		{"not AWS", req("GET", "https://api.github.com/repos/acme/shop", "", "Authorization", "Bearer x")},
		{"EC2", req("POST", "https://ec2.us-east-1.amazonaws.com/", "Action=TerminateInstances&Version=2016-11-15&InstanceId.1=i-0abc",
			"Authorization", sigv4("us-east-1", "ec2"), "Content-Type", form)},
		{"S3", req("DELETE", "https://mybucket.s3.us-east-1.amazonaws.com/a/b.txt", "", "Authorization", sigv4("us-east-1", "s3"))},
		{"DynamoDB", req("POST", "https://dynamodb.us-east-1.amazonaws.com/", `{"TableName":"orders"}`,
			"X-Amz-Target", "DynamoDB_20120810.DeleteTable", "Authorization", sigv4("us-east-1", "dynamodb"))},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Classify(bb.r)
			}
		})
	}
}
