package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGenerate(t *testing.T) {
	tests := []struct {
		name, dir string
		want      string // the table's text
	}{
		{
			name: "aws-sdk apis",
			dir:  "testdata/sdk",
			want: `@ec2 ec2 ec2 ec2 ec2 2016-11-15 -
DescribeInstances
TerminateInstances
@s3 s3 s3 s3 rest-xml 2006-03-01 -
CopyObject PUT /{Bucket}/{Key+} !x-amz-copy-source
DeleteObjects POST /{Bucket}?delete&mode
GetBucketLifecycleConfiguration GET /{Bucket}?lifecycle
GetObject GET /{Bucket}/{Key+}
ListBuckets GET /
PutObject PUT /{Bucket}/{Key+}
GetBucketLifecycle GET /{Bucket}?lifecycle
`,
		},
		{
			name: "botocore data",
			dir:  "testdata/botocore",
			want: `@widgets cloudwatch monitoring widgets json 2020-01-01 Widgets_20200101
DeleteWidget
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var outs []string
			for range 2 {
				out := filepath.Join(t.TempDir(), "table_gen.go")
				if err := run(tt.dir, out); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				outs = append(outs, string(b))
			}
			if outs[0] != outs[1] {
				t.Errorf("two runs gave different output")
			}
			_, table, ok := strings.Cut(outs[0], "const table = `")
			if !ok {
				t.Fatalf("no table in:\n%s", outs[0])
			}
			table = strings.TrimSuffix(table, "`\n")
			if diff := cmp.Diff(tt.want, table); diff != "" {
				t.Errorf("table mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGenerateNeedsModels(t *testing.T) {
	if err := run("", filepath.Join(t.TempDir(), "x.go")); err == nil || !strings.Contains(err.Error(), "npm pack aws-sdk") {
		t.Errorf("run without -models: %v, want advice on fetching the models", err)
	}
	if err := run(t.TempDir(), filepath.Join(t.TempDir(), "x.go")); err == nil {
		t.Errorf("run on an empty directory succeeded")
	}
}
