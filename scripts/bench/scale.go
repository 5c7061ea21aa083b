package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The scaling report of issue 4: how mount time and RSS grow from 10k to
// 100k to 1M entries. Real mounts of the docker save at each file count of
// BENCH_SCALE (images of 100k files per GiB, like the default), and the
// in-process phases up to 1M entries from `go test -bench Scale ./fs/`
// (synthetic layer tars: a 1M-file image is 10 GiB three times over).

// scalingHeading starts the generated section; `bench scale` replaces the
// section in an existing report.
const scalingHeading = "## Scaling\n"

// scalePoint is one real image's mount measurements.
type scalePoint struct {
	files, entries int
	size           int64 // of the docker save
	cold, warm     []float64
	find           []float64
	rssCold        []float64
	rssWarm        []float64
	rssFind        []float64
	count          int
}

// scaleCounts parses BENCH_SCALE: file counts separated by commas, or off.
func scaleCounts() []int {
	v := cmp(os.Getenv("BENCH_SCALE"), "10000,100000")
	if v == "off" || v == "0" {
		return nil
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(s, "k", "000"), "M", "000000"))
		n, err := strconv.Atoi(s)
		must(err)
		out = append(out, n)
	}
	return out
}

// scaling measures every point of BENCH_SCALE and runs the in-process
// benchmark, and returns the report's section.
func scaling(c config) string {
	counts := scaleCounts()
	if len(counts) == 0 {
		return ""
	}
	var points []scalePoint
	for _, n := range counts {
		sc := c
		var g genResult
		if n == c.files {
			// The main image: generated (or kept) as make bench does.
			g = prepare(c, true)
		} else {
			sc.files = n
			sc.size = int64(n) * (1 << 30) / 100000
			sc.dir = filepath.Join(c.dir, fmt.Sprintf("scale-%d", n))
			g = prepare(sc, false)
		}
		points = append(points, measureScale(sc, g))
	}
	goRows, goErr := goScale(c)
	return scaleSection(c, points, goRows, goErr)
}

// measureScale mounts an image's docker save: cold mounts (empty cache
// dir) to the first stat, warm ones, and a find on each warm mount, with
// the daemon's peak RSS after each.
func measureScale(c config, g genResult) scalePoint {
	save := filepath.Join(c.dir, "save.tar")
	st, err := os.Stat(save)
	must(err)
	p := scalePoint{files: c.files, entries: g.Entries, size: st.Size()}
	logf("scaling: %d files, %d entries (%s)", c.files, g.Entries, human(p.size))
	timed("cat " + save + " >/dev/null") // page cache warm, as for the main table
	mnt := filepath.Join(c.dir, "mnt-scale")
	must(os.MkdirAll(mnt, 0o755))
	unmount(mnt)
	cache := filepath.Join(c.dir, "cache-scale")
	root := filepath.Join(mnt, "tags/docker.io/library/bench:latest/linux_amd64/rootfs")
	probe := filepath.Join(root, g.CatList[0])
	mountOnce := func() time.Duration {
		t := time.Now()
		sh(c.bin, "mount", "--cache-dir", cache, save, mnt)
		waitStat(probe, 5*time.Minute)
		return time.Since(t)
	}
	rss := func() float64 {
		if pid := daemonPid("layoutfs", mnt); pid != 0 {
			return float64(vmHWM(pid)) / 1e6
		}
		return 0
	}
	for range c.runs {
		must(os.RemoveAll(cache))
		p.cold = append(p.cold, mountOnce().Seconds())
		p.rssCold = append(p.rssCold, rss())
		unmount(mnt)
	}
	for range c.runs {
		p.warm = append(p.warm, mountOnce().Seconds())
		p.rssWarm = append(p.rssWarm, rss())
		t := time.Now()
		p.count, _ = strconv.Atoi(output("find " + root + " | wc -l"))
		p.find = append(p.find, time.Since(t).Seconds())
		p.rssFind = append(p.rssFind, rss())
		unmount(mnt)
	}
	must(os.RemoveAll(cache))
	return p
}

// goRow is one size of BenchmarkScale: its metrics by unit.
type goRow struct {
	name    string
	metrics map[string]float64
}

// goScale runs BenchmarkScale (fs/scale_bench_test.go) and parses its
// metrics.
func goScale(c config) ([]goRow, error) {
	gobin := os.Getenv("GO")
	if gobin == "" {
		if p, err := exec.LookPath("go"); err == nil {
			gobin = p
		} else {
			gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
	}
	x := cmp(os.Getenv("BENCH_SCALE_X"), "3x")
	logf("scaling: %s test -bench Scale -benchtime %s ./fs/", gobin, x)
	cmd := exec.Command(gobin, "test", "-run", "^$", "-bench", "^BenchmarkScale$", "-benchtime", x, "-timeout", "60m", "./fs/")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	os.Stderr.Write(out.Bytes())
	if err != nil {
		logf("scaling: go test failed: %v", err)
		return nil, err
	}
	var rows []goRow
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkScale/") {
			continue
		}
		r := goRow{name: strings.TrimPrefix(f[0], "BenchmarkScale/"), metrics: map[string]float64{}}
		if i := strings.LastIndex(r.name, "-"); i > 0 {
			r.name = r.name[:i] // the GOMAXPROCS suffix
		}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				r.metrics[f[i+1]] = v
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func spread(v []float64) string {
	if len(v) == 0 {
		return "–"
	}
	m := median(v)
	s := fmt.Sprintf("%.3g", m)
	if len(v) > 1 && m > 0 {
		s += fmt.Sprintf(" ±%.0f%%", (slices.Max(v)-slices.Min(v))/m*100)
	}
	return s
}

func scaleSection(c config, points []scalePoint, rows []goRow, goErr error) string {
	var b strings.Builder
	b.WriteString(scalingHeading)
	fmt.Fprintf(&b, "\n`make bench` (or `make bench-scale` for this section alone), %s. ", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	if len(points) > 0 {
		fmt.Fprintf(&b, "Real mounts of the docker save of images made like the one above at 100k files per GiB; "+
			"median of %d runs, ±%% is (max-min)/median. Cold: empty cache dir (index, merge and the layers' sha256 pass); "+
			"warm: the indexes and merged rootfs from the cache. RSS is the daemon's peak (VmHWM) after mount + first stat, "+
			"and after a `find` over the warm mount (every entry looked up, the node table full).\n\n", c.runs)
		b.WriteString("| files | tar entries | docker save | cold mount → first stat (s) | warm mount → first stat (s) | find (s) | peak RSS, cold mount (MB) | peak RSS, warm mount (MB) | peak RSS after find (MB) |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
		for _, p := range points {
			fmt.Fprintf(&b, "| %d | %d | %s | %s | %s | %s | %s | %s | %s |\n", p.files, p.entries, human(p.size),
				spread(p.cold), spread(p.warm), spread(p.find), spread(p.rssCold), spread(p.rssWarm), spread(p.rssFind))
		}
		b.WriteString("\n")
		for i := 1; i < len(points); i++ {
			a, z := points[i-1], points[i]
			de := float64(z.entries - a.entries)
			if de <= 0 {
				continue
			}
			ratio := func(x, y []float64) string {
				if len(x) == 0 || len(y) == 0 || median(x) <= 0 {
					return "–"
				}
				return fmt.Sprintf("%.1fx", median(y)/median(x))
			}
			perEntry := func(x, y []float64) string {
				if len(x) == 0 || len(y) == 0 {
					return "–"
				}
				return fmt.Sprintf("%+.0f MB, %.0f B per added entry", median(y)-median(x), (median(y)-median(x))*1e6/de)
			}
			fmt.Fprintf(&b, "- %d → %d files (%.1fx the entries): cold mount %s, warm mount %s, find %s; peak RSS cold %s; warm %s; after find %s.\n",
				a.files, z.files, float64(z.entries)/float64(a.entries), ratio(a.cold, z.cold), ratio(a.warm, z.warm), ratio(a.find, z.find),
				perEntry(a.rssCold, z.rssCold), perEntry(a.rssWarm, z.rssWarm), perEntry(a.rssFind, z.rssFind))
		}
		for _, p := range points {
			if len(p.rssFind) > 0 {
				limit := 40 + 250*float64(p.entries)/1e6
				fmt.Fprintf(&b, "- %d files: peak RSS after find %.0f MB against issue 4's 40 MB + 250 B/entry = %.0f MB.\n", p.files, median(p.rssFind), limit)
			}
		}
		b.WriteString("\n")
	}
	switch {
	case goErr != nil:
		fmt.Fprintf(&b, "In process: `go test -bench Scale ./fs/` failed (%v).\n\n", goErr)
	case len(rows) > 0:
		b.WriteString("In process (`go test -bench Scale ./fs/`, fs/scale_bench_test.go): three synthetic layer tars on disk (in the page cache) shaped like the image, " +
			"a cold mount's work (index each layer with tarindex.Open on an empty cache, then build the layer trees and merge, then store the merged tree) " +
			"and a warm mount's (load the indexes and the merged tree from the cache), one layer after the other; heap kept is live heap after a GC " +
			"(cold: indexes and merged tree, as a daemon keeps them after a cold mount, which lets the layer trees go after the merge; warm: the same, loaded); " +
			"peak heap is the heap held from the OS at the end of the phase, started from a heap handed back (garbage included, GOGC 25 as in the daemon). " +
			"Neither has the sha256 pass (it grows with bytes) nor FUSE.\n\n")
		b.WriteString("| entries | index build (ms) | layer trees + merge (ms) | store merged tree (ms) | warm load (ms) | heap kept, cold (B/entry) | heap kept, warm (B/entry) | peak heap, cold (MB) | peak heap, warm (MB) | cache on disk (B/entry) |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range rows {
			m := r.metrics
			fmt.Fprintf(&b, "| %.0f | %.4g | %.4g | %.4g | %.4g | %.0f | %.0f | %.1f | %.1f | %.0f |\n", m["entries"], m["index-ms"], m["merge-ms"], m["store-ms"], m["warm-ms"],
				m["cold-heapB/entry"], m["warm-heapB/entry"], m["cold-peakMB"], m["warm-peakMB"], m["cacheB/entry"])
		}
		b.WriteString("\n")
		for i := 1; i < len(rows); i++ {
			a, z := rows[i-1].metrics, rows[i].metrics
			if a["entries"] <= 0 {
				continue
			}
			x := func(k string) string {
				if a[k] <= 0 {
					return "–"
				}
				return fmt.Sprintf("%.1fx", z[k]/a[k])
			}
			fmt.Fprintf(&b, "- %.0f → %.0f entries (%.1fx): index build %s, merge %s, warm load %s; peak heap cold %s, warm %s; heap per entry kept warm %.0f → %.0f B.\n",
				a["entries"], z["entries"], z["entries"]/a["entries"], x("index-ms"), x("merge-ms"), x("warm-ms"), x("cold-peakMB"), x("warm-peakMB"), a["warm-heapB/entry"], z["warm-heapB/entry"])
		}
		if m := rows[len(rows)-1].metrics; m["entries"] > 0 {
			fmt.Fprintf(&b, "- %.0f entries: peak heap %.0f MB on a cold mount, %.0f MB on a warm one, against issue 4's RSS bound of 40 MB + 250 B/entry = %.0f MB "+
				"(a daemon's RSS is its heap plus a fixed part: compare the real mounts above).\n",
				m["entries"], m["cold-peakMB"], m["warm-peakMB"], 40+250*m["entries"]/1e6)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// spliceScaling puts a scaling section into an existing report in place
// of the one there (up to the next "## " heading), or before the first
// hand-written section when there is none.
func spliceScaling(report, section string) string {
	if i := strings.Index(report, "\n"+scalingHeading); i >= 0 {
		rest := report[i+1+len(scalingHeading):]
		if j := strings.Index(rest, "\n## "); j >= 0 {
			return report[:i+1] + section + rest[j+1:]
		}
		return report[:i+1] + section
	}
	if i := strings.Index(report, "\n## "); i >= 0 {
		return report[:i+1] + section + report[i+1:]
	}
	return report + "\n" + section
}

// scaleOnly is `bench scale`: the scaling section alone, spliced into the
// report.
func scaleOnly(c config) {
	if _, err := os.Stat(c.bin); err != nil {
		panic("no " + c.bin + ": run make build")
	}
	section := scaling(c)
	fmt.Print(section)
	old, err := os.ReadFile(c.out)
	if err != nil {
		old = []byte("# Benchmarks\n")
	}
	must(os.WriteFile(c.out, []byte(spliceScaling(string(old), section)), 0o644))
	logf("wrote the scaling section of %s", c.out)
}
