# Circle Core. The two commands the README starts with:
#   make run    build circle and run the daemon on examples/, publishing under ./.circle/
#   make test   install the test servers (cached), then lint and run every test
SHELL := bash
GO ?= go
# kustomize imports "plugin", which otherwise forces cgo linking: slower and 45 MB bigger.
export CGO_ENABLED ?= 0

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN     := bin/circle
# Tests run with the race detector, which needs cgo.
TESTFLAGS ?= -race -count=1 -timeout 20m

.PHONY: all build run test testenv lint vet fmt bench cover clean

all: build

build: ## build bin/circle
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/circle

run: build ## run the daemon on examples/, publishing to ./.circle/storage, state in ./.circle/state
	$(BIN) serve --source examples --publish file://$(CURDIR)/.circle/storage --state-dir $(CURDIR)/.circle/state \
		--key-file examples/keys/age.example.key \
		--storage-keyring $(CURDIR)/.circle-keyring.json

testenv: ## build or install the test servers into ~/.cache/circle-testenv (cached by version)
	bash testenv/install.sh

# build first: the crash and benchmark tests build the binary themselves, and on a cold
# cache that compile belongs here, not inside a test's timeout.
test: testenv lint build ## the whole test suite against real servers
	CGO_ENABLED=1 $(GO) test $(TESTFLAGS) ./...

lint: vet ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

bench: testenv ## the benchmarks the issues name figures for
	$(GO) test -run '^$$' -bench . -benchmem ./...

cover: testenv ## per-package coverage
	CGO_ENABLED=1 $(GO) test -race -count=1 -cover ./...

clean:
	rm -rf bin .circle .circle-keyring.json
