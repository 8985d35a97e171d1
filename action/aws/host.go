package aws

import (
	"regexp"
	"strings"
)

// hostInfo is what an endpoint's name says: for
// mybucket.s3.us-west-2.amazonaws.com the endpoint prefix s3, region
// us-west-2 and the leading labels mybucket.
type hostInfo struct {
	aws      bool   // an AWS endpoint name
	endpoint string // endpoint prefix known to the table, or the best guess
	region   string
	prefix   string // labels before the endpoint prefix: a bucket, an account id, an API id
	china    bool
	// compatBucket is the bucket in the name of an S3-compatible store's
	// virtual-hosted endpoint (s3Compatible); empty for a path-style one.
	compatBucket string
}

// s3Compatible are S3-compatible stores whose endpoints take the bucket in
// the host name as AWS's do (found by review: DELETE
// prod.acct.r2.cloudflarestorage.com/db/dump.sql deletes prod's db/dump.sql,
// and countersign read bucket db). labels is how many labels before the
// suffix the path-style endpoint has (an account, a region); s3 says the
// endpoint starts at the rightmost label "s3" instead (s3.REGION.…).
var s3Compatible = []struct {
	suffix string
	labels int
	s3     bool
}{
	{suffix: ".eu.r2.cloudflarestorage.com", labels: 1},
	{suffix: ".fedramp.r2.cloudflarestorage.com", labels: 1},
	{suffix: ".r2.cloudflarestorage.com", labels: 1},
	{suffix: ".digitaloceanspaces.com", labels: 1},
	{suffix: ".linodeobjects.com", labels: 1},
	{suffix: ".backblazeb2.com", s3: true},
	{suffix: ".wasabisys.com", s3: true},
	{suffix: ".scw.cloud", s3: true},
	{suffix: ".storage.googleapis.com", labels: 0},
}

// compatBucket returns the bucket named in host when host is an
// S3-compatible store's virtual-hosted endpoint, else "".
func compatBucket(host string) string {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, c := range s3Compatible {
		rest, ok := strings.CutSuffix(host, c.suffix)
		if !ok || rest == "" {
			continue
		}
		labels := strings.Split(rest, ".")
		n := len(labels) - c.labels
		if c.s3 {
			n = -1
			for i := len(labels) - 1; i >= 0; i-- {
				if labels[i] == "s3" {
					n = i
					break
				}
			}
		}
		if n <= 0 {
			return "" // path style: no bucket in the name
		}
		return strings.Join(labels[:n], ".")
	}
	return ""
}

// awsSuffixes are the DNS suffixes of AWS's partitions: commercial,
// China, dual-stack, the European Sovereign Cloud (aws-eusc), and the
// isolated regions (ISO, ISO-B, ISO-E, ISO-F). Found by review: an S3
// delete in the European Sovereign Cloud was read as a path-style request
// to no bucket, with no operation.
var awsSuffixes = []string{".amazonaws.com", ".amazonaws.com.cn", ".api.aws", ".amazonaws.eu",
	".c2s.ic.gov", ".sc2s.sgov.gov", ".cloud.adc-e.uk", ".csp.hci.ic.gov"}

// regionName matches region names: us-east-1, us-gov-west-1,
// us-isob-east-1, eusc-de-east-1.
var regionName = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+){1,3}-[0-9]{1,2}$`)

// parseHost reads an AWS endpoint name. known reports whether an endpoint
// prefix is in the table; the longest known suffix of the labels wins
// (runtime.sagemaker before sagemaker, s3 after a bucket named like a
// service).
func parseHost(host string, known func(string) bool) hostInfo {
	var h hostInfo
	var rest string
	for _, s := range awsSuffixes {
		if strings.HasSuffix(host, s) && len(host) > len(s) {
			rest, h.aws, h.china = host[:len(host)-len(s)], true, s == ".amazonaws.com.cn"
			break
		}
	}
	if !h.aws {
		h.compatBucket = compatBucket(host)
		return h
	}
	labels := strings.Split(rest, ".")
	if len(labels) > 32 {
		labels = labels[len(labels)-32:]
	}
	if vpce, ok := parseInterfaceEndpoint(labels); ok {
		return vpce
	}
	// The region, when there is one, is the last label; dualstack
	// (s3.dualstack.us-east-1, bucket.s3-accelerate.dualstack) comes just
	// before it. Labels further left belong to the endpoint or a bucket, so
	// a bucket named us-east-1 stays a bucket.
	kept := labels
	if n := len(kept); n > 1 && regionName.MatchString(kept[n-1]) {
		h.region, kept = kept[n-1], kept[:n-1]
	}
	if n := len(kept); n > 1 && kept[n-1] == "dualstack" {
		kept = kept[:n-1]
	}
	// The S3 endpoint spellings: s3-us-west-2, s3-external-1, s3-fips,
	// s3-accelerate, s3-accesspoint, s3express-usw2-az1, s3-object-lambda,
	// s3-website-…; S3 Control's s3-control is an endpoint of its own.
	kept = append(kept[:len(kept)-1:len(kept)-1], strings.TrimSuffix(kept[len(kept)-1], "-fips"))
	switch l := kept[len(kept)-1]; {
	case l == "s3-outposts" && len(kept) > 1:
		// An Outposts access point's object requests
		// ({access-point}-{account}.{outpost-id}.s3-outposts.REGION) are
		// S3's, signed as s3-outposts (found by review: a DeleteObjects
		// there had no operation).
		kept[len(kept)-1] = "s3"
	case l == "s3-control" || l == "s3-outposts" || l == "s3express-control":
	case l == "s3-external-1":
		kept[len(kept)-1], h.region = "s3", "us-east-1"
	case strings.HasPrefix(l, "s3-") || strings.HasPrefix(l, "s3express-"):
		r, _ := strings.CutPrefix(l, "s3-")
		if r, ok := strings.CutPrefix(r, "fips-"); ok {
			l = "s3-" + r // s3-fips-us-gov-west-1, the legacy FIPS endpoint
		}
		if r, ok := strings.CutPrefix(l, "s3-"); ok && regionName.MatchString(r) {
			h.region = r
		}
		kept[len(kept)-1] = "s3"
	}
	h.endpoint = kept[len(kept)-1]
	h.prefix = strings.Join(kept[:len(kept)-1], ".")
	for i := range kept {
		if cand := strings.Join(kept[i:], "."); known(cand) {
			h.endpoint, h.prefix = cand, strings.Join(kept[:i], ".")
			break
		}
	}
	if h.endpoint == "s3express-control" {
		h.endpoint = "s3"
	}
	if h.region == "" {
		// Global endpoints (iam.amazonaws.com, sts.amazonaws.com,
		// s3.amazonaws.com) are signed for the partition's first region.
		h.region = "us-east-1"
		if h.china {
			h.region = "cn-north-1"
		}
	}
	return h
}

// parseInterfaceEndpoint reads the name of a VPC interface endpoint
// (AWS PrivateLink): [PREFIX.]vpce-ID.SERVICE.REGION.vpce.amazonaws.com.
// S3's spells the resource type before the id: bucket.vpce-… (a bucket
// in the path, or virtual-hosted as my-bucket.bucket.vpce-…),
// accesspoint.vpce-… and control.vpce-… (S3 Control).
func parseInterfaceEndpoint(labels []string) (hostInfo, bool) {
	n := len(labels)
	if n < 4 || labels[n-1] != "vpce" || !regionName.MatchString(labels[n-2]) {
		return hostInfo{}, false
	}
	id := -1
	for i, l := range labels[:n-2] {
		if strings.HasPrefix(l, "vpce-") {
			id = i
		}
	}
	if id < 0 || id+1 >= n-2 {
		return hostInfo{}, false
	}
	h := hostInfo{aws: true, region: labels[n-2], endpoint: strings.Join(labels[id+1:n-2], ".")}
	before := labels[:id]
	if h.endpoint == "s3" && len(before) > 0 {
		switch before[len(before)-1] {
		case "bucket":
			before = before[:len(before)-1]
		case "control":
			h.endpoint, before = "s3-control", before[:len(before)-1]
		}
	}
	h.prefix = strings.Join(before, ".")
	return h, true
}
