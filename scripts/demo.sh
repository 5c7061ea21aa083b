#!/usr/bin/env bash
# make demo: mount a real docker save (kaniko/ggcr tarball, 14 gzip layers,
# from ../shared/fixtures/real), list it, read from a layer and from the
# merged rootfs, unmount. Needs /dev/fuse (run as root, or with fuse3).
set -euo pipefail
bin=${BIN:-bin/layoutfs}
sample=${SAMPLE:-../shared/fixtures/real/A-dive-kaniko-ggcr-tarball.tar}
mnt=$(mktemp -d /tmp/layoutfs-demo.XXXXXX)
cache=$(mktemp -d /tmp/layoutfs-demo-cache.XXXXXX)
cleanup() { "$bin" umount "$mnt" 2>/dev/null || true; rmdir "$mnt"; rm -rf "$cache"; }
trap cleanup EXIT
set -x
"$bin" mount --cache-dir "$cache" "$sample" "$mnt"
ls "$mnt" "$mnt/tags"
ls "$mnt/tags/dive-test:kaniko-latest/linux_amd64" "$mnt/tags/dive-test:kaniko-latest/linux_amd64/layers"
head -3 "$mnt/tags/dive-test:kaniko-latest/linux_amd64/layers/00/etc/passwd"
ls -l "$mnt/tags/dive-test:kaniko-latest/linux_amd64/rootfs"
head -1 "$mnt/tags/dive-test:kaniko-latest/linux_amd64/rootfs/somefile.txt"
"$bin" umount "$mnt"
