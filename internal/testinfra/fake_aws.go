package testinfra

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// fakeAWS answers AWS API calls closely enough for the AWS CLI: EC2 (query
// protocol), S3 (REST-XML, virtual-hosted and path-style), DynamoDB (JSON),
// STS and IAM (query). Anything else gets the service's own "unknown
// operation" error, so a test that reaches it by mistake fails loudly.
func fakeAWS(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	switch {
	case host == "s3.amazonaws.com" || strings.HasPrefix(host, "s3.") || strings.Contains(host, ".s3.") || strings.Contains(host, ".s3-"):
		fakeS3(w, r, host)
	case strings.HasPrefix(host, "dynamodb."):
		fakeDynamoDB(w, r)
	case strings.HasPrefix(host, "sts.") || strings.HasPrefix(host, "iam."):
		fakeQueryAPI(w, r)
	default:
		fakeEC2(w, r)
	}
}

func fakeEC2(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	switch action := r.Form.Get("Action"); action {
	case "DescribeInstances":
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fake-1</requestId><reservationSet><item><reservationId>r-0fake</reservationId><instancesSet><item><instanceId>i-0abc</instanceId><instanceType>t3.micro</instanceType><instanceState><code>16</code><name>running</name></instanceState></item></instancesSet></item></reservationSet></DescribeInstancesResponse>`)
	case "TerminateInstances":
		id := r.Form.Get("InstanceId.1")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<TerminateInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fake-2</requestId><instancesSet><item><instanceId>%s</instanceId><currentState><code>32</code><name>shutting-down</name></currentState><previousState><code>16</code><name>running</name></previousState></item></instancesSet></TerminateInstancesResponse>`, xmlEscape(id))
	default:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InvalidAction</Code><Message>fake EC2 does not implement %s</Message></Error></Errors><RequestID>fake</RequestID></Response>`, xmlEscape(action))
	}
}

// fakeS3 serves one bucket, mybucket, holding logs/a.txt and logs/b.txt.
func fakeS3(w http.ResponseWriter, r *http.Request, host string) {
	path := r.URL.Path
	if b, _, ok := strings.Cut(host, ".s3"); ok && b != "" && !strings.HasPrefix(host, "s3.") {
		path = "/" + b + path // virtual-hosted style
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	q := r.URL.Query()
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("X-Amz-Request-Id", "fake-s3")
	objects := map[string]string{"logs/a.txt": "aaa", "logs/b.txt": "bbb"}
	switch {
	case bucket == "" && r.Method == http.MethodGet:
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?>
<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>fake</ID></Owner><Buckets><Bucket><Name>mybucket</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>`)
	case bucket != "mybucket":
		s3Error(w, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
	case key == "" && r.Method == http.MethodGet && q.Get("list-type") == "2":
		var b strings.Builder
		fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>mybucket</Name><Prefix>%s</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>`, xmlEscape(q.Get("prefix")))
		for _, k := range []string{"logs/a.txt", "logs/b.txt"} {
			if strings.HasPrefix(k, q.Get("prefix")) {
				fmt.Fprintf(&b, `<Contents><Key>%s</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"fake"</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents>`, k)
			}
		}
		b.WriteString(`</ListBucketResult>`)
		fmt.Fprint(w, b.String())
	case key != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		body, ok := objects[key]
		if !ok {
			s3Error(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Header().Set("ETag", `"fake"`)
		if r.Method == http.MethodGet {
			fmt.Fprint(w, body)
		}
	case key != "" && r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	default:
		s3Error(w, http.StatusNotImplemented, "NotImplemented", "fake S3 does not implement "+r.Method+" "+r.URL.RequestURI())
	}
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>fake-s3</RequestId></Error>`, code, xmlEscape(msg))
}

// fakeDynamoDB knows one table, orders.
func fakeDynamoDB(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	var in struct{ TableName string }
	_ = json.NewDecoder(r.Body).Decode(&in)
	table := map[string]any{"TableName": in.TableName, "TableStatus": "ACTIVE", "ItemCount": 42,
		"TableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/" + in.TableName}
	switch op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810."); op {
	case "ListTables":
		_ = json.NewEncoder(w).Encode(map[string]any{"TableNames": []string{"orders"}})
	case "DescribeTable":
		_ = json.NewEncoder(w).Encode(map[string]any{"Table": table})
	case "DeleteTable":
		table["TableStatus"] = "DELETING"
		_ = json.NewEncoder(w).Encode(map[string]any{"TableDescription": table})
	default:
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazon.coral.service#UnknownOperationException", "message": "fake DynamoDB does not implement " + op})
	}
}

// fakeQueryAPI answers STS GetCallerIdentity and IAM's query protocol.
func fakeQueryAPI(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	w.Header().Set("Content-Type", "text/xml")
	switch action := r.Form.Get("Action"); action {
	case "GetCallerIdentity":
		fmt.Fprint(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/agent</Arn><UserId>AIDAFAKE</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></GetCallerIdentityResponse>`)
	case "DeleteUser":
		fmt.Fprint(w, `<DeleteUserResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></DeleteUserResponse>`)
	default:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>fake API does not implement %s</Message></Error><RequestId>fake</RequestId></ErrorResponse>`, xmlEscape(action))
	}
}
