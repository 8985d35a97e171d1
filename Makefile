# countersign — run `make` for the list of targets.

GO        ?= go
# Go 1.26.8's standard library has known vulnerabilities that matter to a
# proxy (an HTTP/1 desync after CONNECT among them); the go command fetches
# this toolchain from the module proxy the first time (~10 s).
export GOTOOLCHAIN ?= go1.27.3
BIN       ?= bin/countersign
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
FUZZTIME  ?= 20s
SOAK      ?= 10

.DEFAULT_GOAL := help

.PHONY: help build test deps vet unit e2e demo bench lint fuzz soak vulncheck policy check docs clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/countersign
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/countersign

test: deps vet policy unit e2e ## THE test command: go vet, the Rego checks, go test -race ./..., then the end-to-end suite

deps: ## install (as root) or name the tools the tests need
	@./scripts/deps.sh

vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/
	@# countersign is built for macOS too (run, serve, policy; not --isolate):
	@# it must build there, tests included.
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...

unit:
	$(GO) test -race -shuffle=on -count=1 ./...

e2e: ## end-to-end tests: real curl, git, python3 and aws under countersign run
	$(GO) test -tags e2e -count=1 -timeout 20m ./e2e/

demo: ## the self-contained scenario: fake APIs, default policy, a scripted agent
	$(GO) run ./cmd/countersign demo

bench: ## measure SPEC 11: Go benchmarks of the hot pieces, then direct vs bare goproxy vs countersign vs mitmdump (BENCHMARKS.md; BENCHFLAGS=-h lists the flags)
	@./internal/bench/deps.sh
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./internal/bench/ ./policy/ ./audit/ ./internal/mitm/ ./internal/h1/
	$(GO) run ./internal/bench $(BENCHFLAGS)

lint: ## gofmt, go vet and staticcheck
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) tool staticcheck -tags e2e ./e2e/

fuzz: ## run each fuzz target for FUZZTIME (default 20s); their seed corpora run in make test
	@for t in FuzzReadRequest:./internal/h1 FuzzChunkedBody:./internal/h1 FuzzCheckPath:./internal/h1 \
	          FuzzCanonical:./internal/hostport FuzzSplit:./internal/hostport FuzzGuard:./internal/hostport \
	          FuzzTunnelRequests:./proxy FuzzProxyPort:./proxy \
	          FuzzVerify:./audit FuzzRecordRoundTrip:./audit FuzzJournalReplay:./audit FuzzText:./internal/redact FuzzURL:./internal/redact FuzzHeader:./internal/redact FuzzValue:./internal/redact \
	          FuzzLoad:./internal/config FuzzFingerprint:./approval FuzzInflate:./action FuzzDuplicateJSONName:./action FuzzTextEncodingProblem:./action FuzzMethodParamRefusal:./proxy \
	          FuzzParseAuthorization:./action/aws FuzzParsePresigned:./action/aws FuzzMatchRoute:./action/aws FuzzClassify:./action/aws \
	          FuzzRequestInfo:./action/kubernetes FuzzObject:./action/kubernetes FuzzReplicasOf:./action/kubernetes FuzzRoute:./action/github FuzzGraphQL:./action/graphql FuzzLooksLikeDocument:./action/graphql \
	          FuzzPktLines:./action/git FuzzClassify:./action/git FuzzSlackCallback:./approval FuzzSlackValue:./approval FuzzJSONRPC:./action/mcp FuzzTailWatch:./action/mcp \
	          FuzzClientConfig:./session; do \
		name=$${t%%:*}; pkg=$${t#*:}; \
		echo "fuzz $$name ($$pkg)"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s $$pkg || exit 1; \
	done

soak: ## longer runs of the hardening tests, sizes times SOAK (default 10): attacks with every byte, slow and idle clients, kill -9 under load
	COUNTERSIGN_SOAK=$(SOAK) $(GO) test -race -count=1 -timeout 60m -run 'TestAttackCorpus|TestSlowloris|TestIdleConnects|TestUpstreamFailures|TestPolicyFaults' ./proxy/
	COUNTERSIGN_SOAK=$(SOAK) $(GO) test -tags e2e -count=1 -timeout 60m -run 'TestKillNineUnderLoad|TestThousandIdleTunnels' ./e2e/

vulncheck: ## govulncheck ./... against an offline copy of the Go vulnerability database (scripts/vulncheck.sh)
	GO=$(GO) ./scripts/vulncheck.sh

policy: ## opa fmt/check --strict/test (the pinned OPA CLI) and countersign policy test on rego/ and examples/policies/*, compared test by test
	GO=$(GO) ./scripts/policy-check.sh

check: lint test policy vulncheck ## everything CI runs, plus lint and govulncheck

docs: ## regenerate docs/policy.md from the golden requests and rego/lib
	$(GO) test ./internal/docgen -update

clean:
	rm -rf bin
