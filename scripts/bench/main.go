// Command bench is `make bench`: it generates a deterministic image, shapes
// it into the three kinds of source, and times layoutfs against what users
// would do instead (extract with tar or umoci, archivemount one layer, read
// the bytes straight from the archive with dd), printing one table and
// writing it to BENCHMARKS.md.
//
// Settings come from the environment:
//
//	BENCH_SIZE   image size, e.g. 1G (default), 200M
//	BENCH_FILES  number of files (default: 100k per GiB)
//	BENCH_RUNS   runs per measurement, median taken (default 5)
//	BENCH_SLOW   runs of the slow extractions (default 3)
//	BENCH_DIR    work directory (default /var/tmp/layoutfs-bench)
//	BENCH_OUT    report file (default BENCHMARKS.md)
//	BENCH_QUICK  set: layoutfs on the uncompressed sources and dd only (and no
//	             scaling section unless BENCH_SCALE is set)
//	BENCH_SCALE  file counts of the scaling section's real mounts (default
//	             10000,100000; off: no scaling section). A count other than
//	             BENCH_FILES gets its own image (100k files per GiB, docker
//	             save only) under BENCH_DIR/scale-N
//	BENCH_SCALE_X  -benchtime of go test -bench Scale ./fs/ (default 3x)
//	BIN          the layoutfs binary (default bin/layoutfs)
//	GO           the go command, for the scaling section's go test
//
// `bench gen` only generates the image; `bench scale` only measures the
// scaling section and replaces it in BENCH_OUT (make bench-scale);
// `bench floor-list` and `bench floorfs` are the FUSE floor (floor.go).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/layoutfs/layoutfs/tarindex"
)

type config struct {
	size       int64
	files      int
	runs, slow int
	dir, out   string
	bin        string
}

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		must(err)
		return n
	}
	return def
}

func parseSize(s string) int64 {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	}
	f, err := strconv.ParseFloat(s, 64)
	must(err)
	return int64(f * float64(mult))
}

func main() {
	c := config{size: parseSize(cmp(os.Getenv("BENCH_SIZE"), "1G"))}
	c.files = envInt("BENCH_FILES", int(c.size/(1<<30)*100000+c.size%(1<<30)*100000/(1<<30)))
	c.runs = envInt("BENCH_RUNS", 5)
	c.slow = envInt("BENCH_SLOW", 3)
	c.dir = cmp(os.Getenv("BENCH_DIR"), "/var/tmp/layoutfs-bench")
	c.out = cmp(os.Getenv("BENCH_OUT"), "BENCHMARKS.md")
	bin, err := filepath.Abs(cmp(os.Getenv("BIN"), "bin/layoutfs"))
	must(err)
	c.bin = bin
	if len(os.Args) > 1 && os.Args[1] == "gen" {
		prepare(c, true)
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "scale" {
		scaleOnly(c)
		return
	}
	if len(os.Args) == 4 && os.Args[1] == "floor-list" {
		floorList(os.Args[2], os.Args[3])
		return
	}
	if len(os.Args) == 4 && os.Args[1] == "floorfs" {
		serveFloor(os.Args[2], os.Args[3])
		return
	}
	run(c)
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// prepare generates the image once per size: an OCI layout directory with
// uncompressed layers, then skopeo's docker-archive (legacy docker save,
// uncompressed) and, with gz, oci-archive (gzip layers) of it.
func prepare(c config, gz bool) genResult {
	stamp := filepath.Join(c.dir, "gen.json")
	want := fmt.Sprintf("%d-%d", c.size, c.files)
	if !gz {
		want += "-nogz"
	}
	if b, err := os.ReadFile(stamp); err == nil {
		var g struct {
			Key string
			genResult
		}
		if json.Unmarshal(b, &g) == nil && g.Key == want {
			return g.genResult
		}
	}
	logf("generating %s (%d files) in %s", human(c.size), c.files, c.dir)
	must(os.RemoveAll(c.dir))
	must(os.MkdirAll(c.dir, 0o755))
	g := generate(filepath.Join(c.dir, "oci"), genPlan{Size: c.size, Files: c.files})
	logf("skopeo: docker-archive")
	sh("skopeo", "copy", "--quiet", "oci:"+filepath.Join(c.dir, "oci")+":bench", "docker-archive:"+filepath.Join(c.dir, "save.tar")+":bench:latest")
	if gz {
		logf("skopeo: oci-archive with gzip layers")
		sh("skopeo", "copy", "--quiet", "oci:"+filepath.Join(c.dir, "oci")+":bench", "oci-archive:"+filepath.Join(c.dir, "oci-gz.tar")+":bench")
	}
	b, err := json.Marshal(struct {
		Key string
		genResult
	}{want, g})
	must(err)
	must(os.WriteFile(stamp, b, 0o644))
	return g
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func sh(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		panic(fmt.Sprintf("%s %s: %v", name, strings.Join(args, " "), err))
	}
}

// timed runs a shell command line and returns how long it took.
func timed(line string) time.Duration {
	t := time.Now()
	cmd := exec.Command("sh", "-c", line)
	cmd.Stderr = os.Stderr
	if out, err := cmd.Output(); err != nil {
		panic(fmt.Sprintf("%s: %v: %s", line, err, out))
	}
	return time.Since(t)
}

// timedCPU runs a shell command line and returns its output, how long it
// took and the CPU time (user + system) its processes used.
func timedCPU(line string) (string, time.Duration, time.Duration) {
	t := time.Now()
	cmd := exec.Command("sh", "-c", line)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		panic(fmt.Sprintf("%s: %v", line, err))
	}
	wall := time.Since(t)
	return strings.TrimSpace(string(out)), wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// warm reads files (and every file under directories) so that they are in
// the page cache when a run starts. On machines that page out memory idle
// for a while (DAMON, see machine), "page cache warm" holds only if made
// so right before each run.
func warm(paths ...string) {
	for _, p := range paths {
		timed("find " + p + " -type f -exec cat {} + >/dev/null")
	}
}

func output(line string) string {
	out, err := exec.Command("sh", "-c", line).Output()
	if err != nil {
		panic(fmt.Sprintf("%s: %v", line, err))
	}
	return strings.TrimSpace(string(out))
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d B", n)
}

// locate finds where a layer's file starts inside an archive whose members
// are uncompressed layer tars: the physical bytes dd reads.
func locate(archive, name string) int64 {
	f, err := os.Open(archive)
	must(err)
	defer f.Close()
	st, err := f.Stat()
	must(err)
	outer, err := tarindex.Build(context.Background(), io.NewSectionReader(f, 0, st.Size()))
	must(err)
	for _, m := range outer.Entries {
		if !m.IsRegular() || m.Size < 1<<20 {
			continue
		}
		inner, err := tarindex.Build(context.Background(), io.NewSectionReader(f, m.Offset, m.Size))
		if err != nil {
			continue
		}
		for _, e := range inner.Entries {
			if e.Name == name {
				return m.Offset + e.Offset
			}
		}
	}
	panic("locate " + name + " in " + archive)
}

// randRead does n 4 KiB preads at seeded random offsets of [off, off+size).
func randRead(file string, off, size int64, n int) time.Duration {
	f, err := os.Open(file)
	must(err)
	defer f.Close()
	r := rand.New(rand.NewPCG(7, 7))
	buf := make([]byte, 4096)
	t := time.Now()
	for range n {
		at := off + r.Int64N(size-4096)
		if _, err := f.ReadAt(buf, at); err != nil {
			panic(err)
		}
	}
	return time.Since(t)
}

// vmHWM returns a process's peak resident set size.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// daemonPid finds the process serving mnt: its command line names it.
func daemonPid(prog, mnt string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		args := strings.Split(string(b), "\x00")
		if len(args) > 1 && strings.HasSuffix(args[0], prog) && slices.Contains(args, mnt) {
			return pid
		}
	}
	return 0
}

// waitStat polls until path can be stat'ed.
func waitStat(path string, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		var st syscall.Stat_t
		if syscall.Stat(path, &st) == nil {
			return
		}
		if time.Now().After(deadline) {
			panic("no " + path)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func unmount(mnt string) {
	for i := 0; ; i++ {
		if err := syscall.Unmount(mnt, 0); err == nil || err == syscall.EINVAL {
			return
		} else if i > 50 {
			panic(fmt.Sprintf("unmount %s: %v", mnt, err))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
