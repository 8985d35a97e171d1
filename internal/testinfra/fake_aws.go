package testinfra

import (
	"fmt"
	"net/http"
)

// fakeAWS answers AWS API calls (today: EC2's query protocol).
func fakeAWS(w http.ResponseWriter, r *http.Request) {
	fakeEC2(w, r)
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
