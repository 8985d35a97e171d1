package aws

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// awsOpName is an IAM-style operation name in a policy: service:Operation,
// with globs.
var awsOpName = regexp.MustCompile(`"([a-z][a-z0-9-]*):([A-Z*][A-Za-z0-9*]*)"`)

// TestPolicyOperationNamesExist: every service:Operation the example
// policies and the lib name is one the classifier can report, globs
// included. A name spelt differently from the IAM prefix the classifier
// uses never matches (found by review: sso-admin: and efs: where requests
// carry sso: and elasticfilesystem:, so granting an agent admin was allowed).
func TestPolicyOperationNamesExist(t *testing.T) {
	m := loadModels()
	ops := map[string][]string{} // by service
	for _, a := range m.apis {
		for op := range a.ops {
			ops[a.service] = append(ops[a.service], op)
		}
	}
	// Names kept on purpose though no request carries them.
	known := map[string]bool{
		"service:Operation":                 true, // in comments
		"s3:PutAccountPublicAccessBlock":    true, // s3control's, reported as s3:PutPublicAccessBlock
		"s3:DeleteAccountPublicAccessBlock": true,
	}
	var files []string
	for _, glob := range []string{"../../rego/lib/*.rego", "../../examples/policies/*/*.rego"} {
		fs, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fs...)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.rego") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, mm := range awsOpName.FindAllStringSubmatch(string(src), -1) {
			svc, op := mm[1], mm[2]
			if known[svc+":"+op] {
				continue
			}
			list, isAWS := ops[svc]
			if !isAWS {
				t.Errorf("%s: %s:%s names no service the AWS classifier reports (it uses IAM action prefixes)", f, svc, op)
				continue
			}
			checked++
			re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(op), `\*`, ".*") + "$")
			found := false
			for _, o := range list {
				if re.MatchString(o) {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("%s: %s:%s matches no %s operation", f, svc, op, svc)
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d names checked: the pattern no longer finds the policies' lists", checked)
	}
}
