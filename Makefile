# hbd — everything a developer or CI runs. As root:
#   make demo   the whole failover story in network namespaces
#   make test   every test (unit, property, fuzz smoke, namespaces, browser)
GO      ?= $(shell command -v go || echo /usr/local/go/bin/go)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/hbd

.PHONY: all setup build demo test fuzz bench bench-webapp soak deb clean

all: build

setup:
	./scripts/setup.sh

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/hbd

demo: setup build
	$(BIN) lab

# The README's test command; .ci/run calls it. Unit packages run with the
# race detector; the namespace suites run without it (they drive real
# processes, and the detector would only slow them down on 2 cores), one
# package at a time (-p 1) so that no two suites share the CPUs.
test: setup
	$(GO) vet ./...
	$(GO) test -race -count=1 ./config/... ./heartbeat/... ./control/... ./health/... ./notify/... ./drain/... ./sdnotify/... ./keepalived/... ./daemon/... ./witness/... ./internal/...
	$(GO) test -run '^$$' -fuzz FuzzFrameUnmarshalMarshal -fuzztime 10s ./heartbeat/
	$(GO) test -count=1 -p 1 -timeout 30m ./vip/... ./lab/... ./webapp/... ./systemd/... ./packaging/... ./cmd/... ./e2e/...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzFrameUnmarshalMarshal -fuzztime 2m ./heartbeat/

bench: setup build
	$(BIN) lab bench

# Ten minutes at 20% loss with a 250 ms blackout every 30 s (CI runs 60 s).
soak: setup
	HBD_SOAK=10m $(GO) test -count=1 -v -timeout 15m -run TestSoakUnderLoss ./e2e/

bench-webapp: setup
	$(GO) run ./webapp/bench

deb:
	$(GO) run ./packaging/mkdeb -version $(VERSION) -out dist

clean:
	rm -rf bin dist
