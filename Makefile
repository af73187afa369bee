# hbd — everything a developer or CI runs. As root:
#   make demo   the whole failover story in network namespaces
#   make test   every test (unit, property, fuzz smoke, namespaces, browser)
GO      ?= $(shell command -v go || echo /usr/local/go/bin/go)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(DATE)
# The oldest Go that builds hbd: go.mod's go line (the toolchain line is the
# one preferred). make test builds once with it.
GO_MIN  := $(shell sed -n 's/^go //p' go.mod)
BIN     := bin/hbd
LAB     := bin/hbd-lab

# Unit packages (pure, or on loopback) and the namespace suites (root).
UNIT  := ./heartbeat/... ./scripts/... ./internal/config/... ./internal/control/... ./internal/health/... \
         ./internal/notify/... ./internal/drain/... ./internal/sdnotify/... ./internal/keepalived/... ./internal/journal/... \
         ./internal/daemon/... ./internal/witness/... ./internal/proc/... ./internal/redisconn/... \
         ./internal/redistest/... ./internal/testenv/... ./internal/metrics/... ./internal/resp/...
NETNS := ./vip/... ./internal/handoff/... ./internal/lab/... ./webapp/... ./systemd/... \
         ./internal/packaging/... ./cmd/... ./internal/e2e/...

.PHONY: all setup build demo test fuzz bench bench-webapp soak deb clean

all: build

setup:
	./scripts/setup.sh

# Two binaries: hbd (the daemon and its CLI, what ships) and hbd-lab (the
# demo and the benchmark, which run the hbd next to them). hbd is built as
# the package ships it, static (no libc mapped: about 1.5 MB less RSS), so
# the benchmark measures what runs in production; nethttpomithttp2 leaves
# HTTP/2 out, as the package does (internal/packaging.BuildTags).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -tags nethttpomithttp2 -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/hbd
	$(GO) build -o $(LAB) ./cmd/hbd-lab

demo: setup build
	$(LAB)

# The README's test command; .ci/run calls it. It first builds everything
# with the oldest Go hbd supports (fetched once from the module proxy, then
# cached), so that the go line stays true. Unit packages run with the
# race detector; the namespace suites run without it (they drive real
# processes, and the detector would only slow them down on 2 cores), one
# package at a time (-p 1) so that no two suites share the CPUs.
# TestHandoversUnderLoad runs 100 planned handovers here (the benchmark
# runs 1000: make bench).
test: setup
	GOTOOLCHAIN=go$(GO_MIN) $(GO) build ./...
	$(GO) vet ./...
	$(GO) test -race -count=1 $(UNIT)
	$(MAKE) --no-print-directory fuzz FUZZTIME=3s
	HBD_E2E_HANDOVERS=100 $(GO) test -count=1 -p 1 -timeout 30m $(NETNS)

# Every fuzz target, one after the other (go test fuzzes one target per
# run), FUZZTIME each: 2 minutes here, a few seconds in `make test`. Their
# seed corpora are in each package's testdata/fuzz; a failing input found
# lands there too and then runs with the unit tests.
FUZZTIME ?= 2m
FUZZ = \
	./heartbeat/:FuzzFrameUnmarshalMarshal \
	./heartbeat/:FuzzSignedFrames \
	./heartbeat/:FuzzTCPStream \
	./internal/config/:FuzzParse \
	./internal/keepalived/:FuzzImport \
	./internal/control/:FuzzServe

fuzz:
	@set -e; for t in $(FUZZ); do \
		echo "fuzz $${t#*:} ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) $${t%%:*}; \
	done

bench: setup build
	$(LAB) bench

# Ten minutes at 20% loss with a 250 ms blackout every 30 s (CI runs 60 s).
soak: setup
	HBD_SOAK=10m $(GO) test -count=1 -v -timeout 15m -run TestSoakUnderLoss ./internal/e2e/

bench-webapp: setup
	$(GO) run ./webapp/bench

# Two packages (internal/packaging.Variants): hbd (L2 only, built with
# nobgp) and hbd-bgp (with GoBGP; replaces hbd). PACKAGE=hbd builds one.
deb:
	$(GO) run ./internal/packaging/mkdeb -version $(VERSION) -out dist $(if $(PACKAGE),-package $(PACKAGE))

clean:
	rm -rf bin dist
