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

.PHONY: all build run test testenv lint vet fmt bench bench-peers cover fuzz clean

all: build

build: ## build bin/circle
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/circle

# The storage keyring make run publishes with. serve never makes one (a missing keyring is
# an error, so a typo cannot start a new key); on a fresh checkout run makes it first.
KEYRING := $(CURDIR)/.circle-keyring.json

run: build ## run the daemon on examples/, publishing to ./.circle/storage, state in ./.circle/state
	@if [ ! -f $(KEYRING) ]; then \
		echo "making the storage keyring $(KEYRING) (circle storage keyring init; keep it, the builds open only with it)"; \
		$(BIN) storage keyring init $(KEYRING) >/dev/null; \
	fi
	$(BIN) serve --source examples --publish file://$(CURDIR)/.circle/storage --state-dir $(CURDIR)/.circle/state \
		--key-file examples/keys/age.example.key \
		--storage-keyring $(KEYRING)

testenv: ## build or install the test servers into ~/.cache/circle-testenv (cached by version)
	bash testenv/install.sh

# build first: the crash and benchmark tests build the binary themselves, and on a cold
# cache that compile belongs here, not inside a test's timeout. go test's events go through
# tools/skipcheck, which prints the package lines and each failed test's output as go test
# does, and fails the run on a test that skipped without an entry in .ci/allowed-skips.txt.
test: testenv lint build ## the whole test suite against real servers; unlisted skips fail it
	$(GO) build -o bin/skipcheck ./tools/skipcheck
	set -o pipefail; CGO_ENABLED=1 $(GO) test -json $(TESTFLAGS) ./... | bin/skipcheck -allow .ci/allowed-skips.txt

lint: vet ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# BenchmarkDaemon's iterations are pushes of about half a second each, and its p95 needs at
# least 30 of them: it runs alone, for DAEMON_PUSHES iterations, after the others.
DAEMON_PUSHES ?= 30
bench: testenv ## the benchmarks the issues name figures for
	$(GO) test -run '^$$' -bench . -skip '^Benchmark(Daemon|Peers)$$' -benchmem ./...
	$(GO) test -run '^$$' -bench '^BenchmarkDaemon$$' -benchtime $(DAEMON_PUSHES)x -benchmem ./cmd/circle

# Circle and Flux (source-controller + kustomize-controller) side by side on the same work,
# in one run: builds Flux's controllers from the module proxy once (about 8 CPU-minutes
# cold, cached by version next to the test servers), then prints both tools' figures and
# the ratios, and writes them to bench-peers.json. Not part of make test.
PEERS_PUSHES ?= 30
bench-peers: testenv ## Circle and Flux side by side: cold, push → applied, no-op CPU, memory
	bash testenv/install.sh peers
	CIRCLE_PEERS_PUSHES=$(PEERS_PUSHES) CIRCLE_PEERS_JSON=$(CURDIR)/bench-peers.json \
		$(GO) test -run '^$$' -bench '^BenchmarkPeers$$' -benchtime 1x -timeout 60m ./cmd/circle

# Every Go fuzz target (func FuzzXxx in a _test.go file) is found in the source, not
# listed here, and run alone for FUZZTIME. All run even after a failure; the summary gives
# each one's execs and time, and the target fails if any did. A crash leaves its input in
# <package>/testdata/fuzz/<FuzzName>/, to rerun with `go test -run <FuzzName>/<file>`.
FUZZTIME ?= 60s
# FUZZ narrows the run to the targets whose "package FuzzName" matches this regexp.
FUZZ ?= .
# Minimizing each new interesting input may take Go's default 60 s, most of a target's time
# when its inputs are slow (a registry load is ~300 a second); crashers are still minimized.
FUZZMINIMIZETIME ?= 5s
fuzz: testenv ## run every fuzz target for FUZZTIME each (default 60s); fails on any crash
	@log=$$(mktemp -d); failed=""; summary=""; \
	targets=$$(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | grep -v '/testdata/' \
		| sed -E 's#^\./(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]*)\($$#\1 \2#' | sort -u | grep -E -- '$(FUZZ)'); \
	if [ -z "$$targets" ]; then echo "no fuzz targets match '$(FUZZ)'"; exit 1; fi; \
	while read -r pkg name; do \
		out="$$log/$${pkg//\//_}.$$name.log"; \
		echo "== $$name ./$$pkg ($(FUZZTIME))"; \
		start=$$(date +%s); \
		if $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) "./$$pkg" >"$$out" 2>&1; then res=ok; \
		else res=FAIL; failed="$$failed ./$$pkg:$$name"; tail -40 "$$out"; fi; \
		took=$$(( $$(date +%s) - start )); \
		execs=$$(grep -Eo 'execs: [0-9]+' "$$out" | tail -1); \
		summary="$$summary$$(printf '%-4s %-20s %-18s %-16s %5ss' "$$res" "$$name" "./$$pkg" "$${execs:-execs: ?}" "$$took")"$$'\n'; \
	done <<<"$$targets"; \
	echo; printf '%s' "$$summary"; rm -rf "$$log"; \
	if [ -n "$$failed" ]; then echo "fuzz failures:$$failed"; exit 1; fi

cover: testenv ## per-package coverage
	CGO_ENABLED=1 $(GO) test -race -count=1 -cover ./...

clean:
	rm -rf bin .circle .circle-keyring.json
