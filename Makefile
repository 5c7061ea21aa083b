GO ?= go
BIN := bin/layoutfs

.PHONY: build demo test unit e2e bench bench-scale vet clean fuzz

build:
	$(GO) build -o $(BIN) ./cmd/layoutfs

# Mount a real sample image, list it, read from a layer and the rootfs, unmount.
demo: build
	BIN=$(BIN) ./scripts/demo.sh

# Unit tests of every package, then the end-to-end tests against real mounts,
# then a short fuzzing run (the seed corpora already ran as plain tests).
test: vet
	$(GO) test -count=1 -timeout 30m ./...
	$(MAKE) fuzz

# Each fuzz target for FUZZTIME (9 targets: about 135 s at 15s); a failing
# input is saved under the package's testdata/fuzz/ and fails the run.
FUZZTIME ?= 15s
FUZZ_TARGETS := ./tarindex:FuzzBuild ./tarindex:FuzzPlainHeader ./tarindex:FuzzTOC ./tarindex/zran:FuzzInflate ./tarindex/zran:FuzzBuild ./tarindex/zran:FuzzLoad \
	./tarindex/zstdframes:FuzzBuild ./layout:FuzzOpenLayout ./fs:FuzzTree
fuzz:
	GO=$(GO) ./scripts/fuzz.sh $(FUZZTIME) $(FUZZ_TARGETS)

vet:
	$(GO) vet ./...

# The peer benchmark (scripts/bench): BENCH_SIZE=1G by default, see
# scripts/bench/main.go for the other knobs; writes BENCHMARKS.md, with its
# Scaling section (BENCH_SCALE=off leaves it out). Then the in-process hot
# paths (BenchmarkScale ran for the Scaling section already); mount's are
# sub-microsecond, so they run for a second, not 3 iterations.
BENCH_SIZE ?= 1G
bench: build
	BIN=$(BIN) BENCH_SIZE=$(BENCH_SIZE) GO=$(GO) $(GO) run ./scripts/bench
	$(GO) test -run '^$$' -bench . -skip Scale -benchtime 3x -timeout 60m ./tarindex/ ./layout/ ./fs/
	$(GO) test -run '^$$' -bench . -benchtime 1s ./mount/

# The Scaling section alone (real mounts at 10k and 100k files, go test
# -bench Scale up to 1M entries), replaced in BENCHMARKS.md.
bench-scale: build
	BIN=$(BIN) BENCH_SIZE=$(BENCH_SIZE) GO=$(GO) $(GO) run ./scripts/bench scale

clean:
	rm -rf bin
