GO ?= go
BIN := bin/layoutfs

.PHONY: build demo test unit e2e bench vet clean

build:
	$(GO) build -o $(BIN) ./cmd/layoutfs

# Mount a real sample image, list it, read from a layer and the rootfs, unmount.
demo: build
	BIN=$(BIN) ./scripts/demo.sh

# Unit tests of every package, then the end-to-end tests against real mounts.
test: vet
	$(GO) test -count=1 -timeout 30m ./...

vet:
	$(GO) vet ./...

# The peer benchmark (scripts/bench): BENCH_SIZE=1G by default, see
# scripts/bench/main.go for the other knobs; writes BENCHMARKS.md. Then the
# in-process hot paths.
BENCH_SIZE ?= 1G
bench: build
	BIN=$(BIN) BENCH_SIZE=$(BENCH_SIZE) $(GO) run ./scripts/bench
	$(GO) test -run '^$$' -bench . -benchtime 3x -timeout 60m ./tarindex/ ./layout/ ./fs/

clean:
	rm -rf bin
