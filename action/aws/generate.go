package aws

// The operation table (table_gen.go) is generated from the AWS API models
// that the AWS SDKs are built from, so that every service is covered without
// hand-written per-service lists. The models are not committed; to
// regenerate the table:
//
//	(cd /tmp && npm pack aws-sdk@2.1693.0 && tar xzf aws-sdk-2.1693.0.tgz)
//	AWS_MODELS=/tmp/package/apis go generate ./action/aws/
//
// The generator also reads botocore's data directory (Debian's
// python3-botocore: AWS_MODELS=/usr/lib/python3/dist-packages/botocore/data),
// but botocore names some APIs differently (cloudwatch for monitoring, elbv2
// for elasticloadbalancingv2), which changes the action's api field; the
// committed table comes from the pinned aws-sdk release above. The output is
// deterministic: the same models give the same bytes. TestTableCoversCLIServices
// checks that the committed table parses and covers the services the AWS CLI
// is used with most.
//
//go:generate go run ./gen -models $AWS_MODELS -o table_gen.go
