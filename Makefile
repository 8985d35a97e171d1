# countersign — run `make` for the list of targets.

GO        ?= go
BIN       ?= bin/countersign
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
FUZZTIME  ?= 20s

.DEFAULT_GOAL := help

.PHONY: help build test deps vet unit e2e demo bench lint fuzz policy check clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/countersign
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/countersign

test: deps vet unit e2e ## THE test command: go vet, go test -race ./..., then the end-to-end suite

deps: ## install (as root) or name the tools the tests need
	@./scripts/deps.sh

vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/

unit:
	$(GO) test -race -shuffle=on -count=1 ./...

e2e: ## end-to-end tests: real curl, git, python3 and aws under countersign run
	$(GO) test -tags e2e -count=1 -timeout 20m ./e2e/

demo: ## the self-contained scenario: fake APIs, default policy, a scripted agent
	$(GO) run ./cmd/countersign demo

bench: ## measure: direct vs bare goproxy vs countersign (ratios), plus Go benchmarks
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./policy/ ./audit/ ./internal/mitm/ ./internal/h1/
	$(GO) run ./internal/bench

lint: ## gofmt, go vet and staticcheck
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) tool staticcheck -tags e2e ./e2e/

fuzz: ## run each fuzz target for FUZZTIME (default 20s)
	@for t in FuzzReadRequest:./internal/h1 FuzzChunkedBody:./internal/h1 FuzzCanonical:./internal/hostport FuzzSplit:./internal/hostport \
	          FuzzVerify:./audit FuzzText:./internal/redact FuzzLoad:./internal/config FuzzFingerprint:./approval \
	          FuzzParseAuthorization:./action/aws FuzzParsePresigned:./action/aws FuzzMatchRoute:./action/aws FuzzClassify:./action/aws \
	          FuzzRequestInfo:./action/kubernetes FuzzObject:./action/kubernetes FuzzRoute:./action/github FuzzGraphQL:./action/graphql \
	          FuzzPktLines:./action/git FuzzClassify:./action/git FuzzSlackCallback:./approval FuzzSlackValue:./approval FuzzJSONRPC:./action/mcp; do \
		name=$${t%%:*}; pkg=$${t#*:}; \
		echo "fuzz $$name ($$pkg)"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

policy: ## run the Rego tests of rego/ with countersign policy test
	$(GO) run ./cmd/countersign policy test rego/

check: lint test policy ## everything CI runs, plus lint

clean:
	rm -rf bin
