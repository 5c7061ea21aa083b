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

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x -timeout 60m ./...

clean:
	rm -rf bin
