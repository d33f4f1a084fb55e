# repld — build, test, benchmark and fuzz. Everything a target needs beyond
# Go itself it installs under .bin/ on first use.

GO          ?= go
BIN         := $(CURDIR)/.bin
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(BIN)/staticcheck-$(STATICCHECK_VERSION)

# Pure codecs with no goroutines run without the race detector; every other
# package has concurrency and runs with it.
NORACE_PKGS := ./fragment/... ./wire/...
RACE_PKGS    = $(shell $(GO) list ./... | grep -v -e '/fragment' -e '/wire')

FUZZTIME   ?= 30s
BENCHTIME  ?= 1s
TEST_FLAGS ?=

.PHONY: all build test lint fmt-check vet staticcheck unit bench bench-go fuzz clean demo

all: build test

build:
	$(GO) build ./...

test: lint unit

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.bin/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

$(STATICCHECK):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(BIN)/staticcheck $(STATICCHECK)

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

unit:
	$(GO) test $(TEST_FLAGS) $(NORACE_PKGS)
	$(GO) test -race $(TEST_FLAGS) $(RACE_PKGS)

# The project's benchmark table (see "Reading the benchmark table" in the
# README): one process, loopback TCP, durable badger stores; about seven
# minutes. BENCH_FLAGS passes flags to `repld bench-table`, e.g.
# BENCH_FLAGS='--row-duration 1s --json'.
BENCH_FLAGS ?=
bench:
	$(GO) run ./cmd/repld bench-table $(BENCH_FLAGS)

# The Go micro-benchmarks of every package.
bench-go:
	$(GO) test -run='^$$' -bench=. -benchtime=$(BENCHTIME) ./...

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for file in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		dir=$$(dirname $$file); \
		for target in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$file | cut -d' ' -f2); do \
			echo "== $$dir $$target ($(FUZZTIME))"; \
			$(GO) test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) $$dir; \
		done; \
	done

clean:
	rm -rf $(BIN)

# A primary and two replicas in one process on loopback: a workload with
# multi-megabyte objects, then one replica's disk fails and it is quarantined.
demo:
	$(GO) run ./cmd/repld demo
