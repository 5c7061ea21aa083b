package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Rows of the table, in order.
const (
	rowCold = "mount → first stat, cold cache dir (s)"
	rowWarm = "mount → first stat, warm cache dir (s)"
	rowFind = "find rootfs | wc -l (s)"
	// The CPU time of find itself (user + system, from its rusage): on a
	// FUSE mount mostly the kernel setting up an inode and a dentry for
	// each entry of each READDIRPLUS reply, in find's own context.
	rowFindCPU = "find rootfs | wc -l: CPU time of find itself, user + sys (s)"
	rowCat     = "cat 1,000 random small files (s)"
	rowSeq     = "sequential read of a large file (s)"
	rowRand    = "2,000 × 4 KiB random reads of it (s)"
	rowCp      = "cp -a rootfs to /dev/shm (s)"
	rowRSS0    = "peak RSS after warm mount + stat (MB)"
	rowRSS     = "peak RSS of the daemon (MB)"
	rowCount   = "entries find sees"

	// The same operations in the same kernel-cache state on both sides:
	// again on the same mount or tree (dentries, inodes and page cache warm,
	// as the extracted tree's always are), and a find with the dentries and
	// inodes dropped (a fresh mount's state; for layoutfs the first find).
	rowFind2    = "find rootfs | wc -l, again on the same mount/tree (s)"
	rowFindCold = "find rootfs | wc -l, dentries + inodes cold: fresh mount / after drop_caches (s)"
	rowCat2     = "cat 1,000 random small files, again (s)"
	rowSeq2     = "sequential read of a large file, again (s)"
)

var rows = []string{rowCold, rowWarm, rowFind, rowFindCPU, rowFind2, rowFindCold, rowCat, rowCat2, rowSeq, rowSeq2, rowRand, rowCp, rowRSS0, rowRSS, rowCount}

// Columns.
const (
	colDocker = "layoutfs docker-save"
	colGzip   = "layoutfs oci-archive gz"
	colDir    = "layoutfs OCI dir"
	colFloor  = "FUSE floor (no-op server)"
	colTar    = "tar -x (+layers)"
	colTarGz  = "tar -x gz"
	colUmoci  = "umoci unpack"
	colAM     = "archivemount (layer 0)"
	colDD     = "dd from archive"
)

var cols = []string{colDocker, colGzip, colDir, colFloor, colTar, colTarGz, colUmoci, colAM, colDD}

type results map[string]map[string][]float64

func (r results) add(row, col string, v float64) {
	if r[row] == nil {
		r[row] = map[string][]float64{}
	}
	r[row][col] = append(r[row][col], v)
}

func (r results) addDur(row, col string, d time.Duration) { r.add(row, col, d.Seconds()) }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

type source struct {
	col, path, rootfs string
}

// cache is the source's layoutfs cache directory.
func (s source) cache(c config) string {
	return filepath.Join(c.dir, "cache-"+strings.ReplaceAll(s.col, " ", "_"))
}

func run(c config) {
	g := prepare(c, true)
	if _, err := os.Stat(c.bin); err != nil {
		panic("no " + c.bin + ": run make build")
	}
	res := results{}
	mnt := filepath.Join(c.dir, "mnt")
	must(os.MkdirAll(mnt, 0o755))
	unmount(mnt)
	cat := filepath.Join(c.dir, "catlist")
	large := g.Large

	sources := []source{
		{colDocker, filepath.Join(c.dir, "save.tar"), "tags/docker.io/library/bench:latest/linux_amd64/rootfs"},
		{colGzip, filepath.Join(c.dir, "oci-gz.tar"), "tags/bench/linux_amd64/rootfs"},
		{colDir, filepath.Join(c.dir, "oci"), "tags/bench/linux_amd64/rootfs"},
	}
	quick := os.Getenv("BENCH_QUICK") != ""
	for _, s := range sources {
		if quick && s.col == colGzip {
			continue
		}
		logf("%s: %s", s.col, s.path)
		cache := s.cache(c)
		root := filepath.Join(mnt, s.rootfs)
		probe := filepath.Join(root, g.CatList[0])
		mountOnce := func() time.Duration {
			warm(s.path)
			t := time.Now()
			sh(c.bin, "mount", "--cache-dir", cache, s.path, mnt)
			waitStat(probe, time.Minute)
			return time.Since(t)
		}
		cold := c.runs
		if s.col == colGzip {
			cold = c.slow
		}
		for range cold {
			must(os.RemoveAll(cache))
			res.addDur(rowCold, s.col, mountOnce())
			unmount(mnt)
		}
		for range c.runs {
			res.addDur(rowWarm, s.col, mountOnce())
			if pid := daemonPid("layoutfs", mnt); pid != 0 {
				res.add(rowRSS0, s.col, float64(vmHWM(pid))/1e6)
			}
			unmount(mnt)
		}
		for range c.runs {
			// A fresh mount each run: nothing of it in the kernel's caches,
			// the archive itself in the page cache.
			mountOnce()
			measureTree(c, res, s.col, root, cat, g)
			measureAgain(res, s.col, root, cat, g)
			if pid := daemonPid("layoutfs", mnt); pid != 0 {
				res.add(rowRSS, s.col, float64(vmHWM(pid))/1e6)
			}
			unmount(mnt)
		}
	}

	floor(c, res, sources[0], mnt, cat, g)

	// dd: the same bytes straight from the docker save, where they lie.
	off := locate(filepath.Join(c.dir, "save.tar"), large)
	for range c.runs {
		warm(filepath.Join(c.dir, "save.tar"))
		res.addDur(rowSeq, colDD, timed(fmt.Sprintf("dd if=%s of=/dev/null bs=1M iflag=skip_bytes,count_bytes skip=%d count=%d status=none", filepath.Join(c.dir, "save.tar"), off, g.LargeLen)))
		res.addDur(rowRand, colDD, randRead(filepath.Join(c.dir, "save.tar"), off, g.LargeLen, 2000))
		res.addDur(rowSeq2, colDD, timed(fmt.Sprintf("dd if=%s of=/dev/null bs=1M iflag=skip_bytes,count_bytes skip=%d count=%d status=none", filepath.Join(c.dir, "save.tar"), off, g.LargeLen)))
	}
	// A fresh mount's first find is the cold-dentries state.
	for _, col := range []string{colDocker, colGzip, colDir} {
		for _, v := range res[rowFind][col] {
			res.add(rowFindCold, col, v)
		}
	}

	if quick {
		// Iterating on layoutfs: no peers but dd.
		scale := ""
		if os.Getenv("BENCH_SCALE") != "" {
			scale = scaling(c)
		}
		report(c, g, res, scale)
		return
	}

	// Extract first: the outer tar, then each layer in order.
	x := filepath.Join(c.dir, "x")
	extract := func() {
		must(os.RemoveAll(x))
		must(os.MkdirAll(filepath.Join(x, "archive"), 0o755))
		must(os.MkdirAll(filepath.Join(x, "rootfs"), 0o755))
	}
	for range c.slow {
		extract()
		res.addDur(rowCold, colTar, timeExtract(filepath.Join(c.dir, "save.tar"), x, ""))
	}
	for range c.runs {
		warm(filepath.Join(x, "rootfs"))
		measureTree(c, res, colTar, filepath.Join(x, "rootfs"), cat, g)
	}
	for range c.runs {
		warm(filepath.Join(x, "rootfs"))
		measureAgain(res, colTar, filepath.Join(x, "rootfs"), cat, g)
	}
	// The extracted tree's find in a fresh mount's state: dentries and
	// inodes dropped. A kernel that evicts inodes with cached pages drops
	// their page cache with them (6.18 keeps such inodes: fincore shows the
	// archives and the tree's files still cached), so the sources are read
	// back in before anything else runs.
	for range c.runs {
		if !dropCaches() {
			break
		}
		t := time.Now()
		output("find " + filepath.Join(x, "rootfs") + " | wc -l")
		res.addDur(rowFindCold, colTar, time.Since(t))
	}
	if len(res[rowFindCold][colTar]) > 0 {
		logf("reading the sources back into the page cache")
		timed("cat " + filepath.Join(c.dir, "save.tar") + " " + filepath.Join(c.dir, "oci-gz.tar") + " >/dev/null && find " + filepath.Join(c.dir, "oci") + " -type f -exec cat {} + >/dev/null")
	}
	for range c.slow {
		extract()
		res.addDur(rowCold, colTarGz, timeExtract(filepath.Join(c.dir, "oci-gz.tar"), x, "z"))
	}
	must(os.RemoveAll(x))

	// umoci: extraction that applies whiteouts.
	bundle := filepath.Join(c.dir, "bundle")
	for range c.slow {
		must(os.RemoveAll(bundle))
		res.addDur(rowCold, colUmoci, timed(fmt.Sprintf("umoci unpack --image %s:bench %s >/dev/null", filepath.Join(c.dir, "oci"), bundle)))
	}
	must(os.RemoveAll(bundle))

	// archivemount on layer 0, which holds the cat list and the large file.
	if _, err := exec.LookPath("archivemount"); err != nil {
		logf("SKIPPING archivemount: not installed (apt-get install -y archivemount)")
	} else {
		layer0 := filepath.Join(c.dir, "oci", "blobs", "sha256", strings.TrimPrefix(g.Layers[0], "sha256:"))
		probe := filepath.Join(mnt, g.CatList[0])
		for range c.slow {
			warm(layer0)
			t := time.Now()
			sh("archivemount", "-o", "ro,readonly", layer0, mnt)
			waitStat(probe, time.Minute)
			res.addDur(rowCold, colAM, time.Since(t))
			measureTreeCp(c, res, colAM, mnt, cat, g, false)
			if pid := daemonPid("archivemount", mnt); pid != 0 {
				res.add(rowRSS, colAM, float64(vmHWM(pid))/1e6)
			}
			unmount(mnt)
		}
	}

	scale := scaling(c)
	report(c, g, res, scale)
}

// dropCaches syncs and drops the kernel's dentries and inodes (echo 2 >
// /proc/sys/vm/drop_caches); false when it may not.
func dropCaches() bool {
	sh("sync")
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
		logf("SKIPPING the find after drop_caches: %v", err)
		return false
	}
	return true
}

// timeExtract is the "extract first" way: untar the archive, then each
// layer of its manifest.json or index, in order, into rootfs.
func timeExtract(archive, x, z string) time.Duration {
	t := time.Now()
	sh("tar", "-xf", archive, "-C", filepath.Join(x, "archive"))
	for _, l := range layerFiles(filepath.Join(x, "archive")) {
		sh("tar", "-x"+z+"f", l, "-C", filepath.Join(x, "rootfs"))
	}
	return time.Since(t)
}

// layerFiles lists the layer tars of an extracted archive, bottom first.
func layerFiles(dir string) []string {
	var out []string
	if b, err := os.ReadFile(filepath.Join(dir, "manifest.json")); err == nil {
		var m []struct{ Layers []string }
		must(json.Unmarshal(b, &m))
		for _, l := range m[0].Layers {
			out = append(out, filepath.Join(dir, l))
		}
		return out
	}
	var ix struct{ Manifests []struct{ Digest string } }
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	must(err)
	must(json.Unmarshal(b, &ix))
	blob := func(d string) string { return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")) }
	var m struct{ Layers []struct{ Digest string } }
	b, err = os.ReadFile(blob(ix.Manifests[0].Digest))
	must(err)
	must(json.Unmarshal(b, &m))
	for _, l := range m.Layers {
		out = append(out, blob(l.Digest))
	}
	return out
}

// floor measures the FUSE floor (floor.go): src's merged rootfs recorded
// from a layoutfs mount, then served from memory by a no-op server on a
// fresh mount each run.
func floor(c config, res results, src source, mnt, cat string, g genResult) {
	logf("%s", colFloor)
	sh(c.bin, "mount", "--cache-dir", src.cache(c), src.path, mnt)
	list := filepath.Join(c.dir, "floor.gob")
	floorList(filepath.Join(mnt, src.rootfs), list)
	unmount(mnt)
	fmnt := filepath.Join(c.dir, "mnt-floor")
	must(os.MkdirAll(fmnt, 0o755))
	unmount(fmnt)
	for range c.runs {
		srv := startFloor(list, fmnt, filepath.Join(fmnt, g.CatList[0]))
		measureTree(c, res, colFloor, fmnt, cat, g)
		measureAgain(res, colFloor, fmnt, cat, g)
		stopFloor(srv, fmnt)
	}
}

// measureTree runs the reading operations on a tree (a mount's rootfs or
// an extracted one).
func measureTree(c config, res results, col, root, cat string, g genResult) {
	measureTreeCp(c, res, col, root, cat, g, true)
}

// measureAgain repeats find, the cats and the sequential read on a tree
// measureTree has just gone through: the kernel's caches of it are warm.
func measureAgain(res results, col, root, cat string, g genResult) {
	t := time.Now()
	output("find " + root + " | wc -l")
	res.addDur(rowFind2, col, time.Since(t))
	res.addDur(rowCat2, col, timed("xargs -d '\\n' -a "+cat+" cat >/dev/null"))
	res.addDur(rowSeq2, col, timed("dd if="+filepath.Join(root, g.Large)+" of=/dev/null bs=1M status=none"))
}

// measureTreeCp is measureTree, with or without the cp -a (which takes
// archivemount longer than everything else together).
func measureTreeCp(c config, res results, col, root, cat string, g genResult, cp bool) {
	var list strings.Builder
	for _, p := range g.CatList {
		list.WriteString(filepath.Join(root, p) + "\n")
	}
	must(os.WriteFile(cat, []byte(list.String()), 0o644))
	n, wall, cpu := timedCPU("find " + root + " | wc -l")
	res.addDur(rowFind, col, wall)
	res.addDur(rowFindCPU, col, cpu)
	cnt, _ := strconv.Atoi(n)
	res.add(rowCount, col, float64(cnt))
	res.addDur(rowCat, col, timed("xargs -d '\\n' -a "+cat+" cat >/dev/null"))
	big := filepath.Join(root, g.Large)
	res.addDur(rowSeq, col, timed("dd if="+big+" of=/dev/null bs=1M status=none"))
	res.addDur(rowRand, col, randRead(big, 0, g.LargeLen, 2000))
	if !cp {
		return
	}
	dst := "/dev/shm/layoutfs-bench-cp"
	must(os.RemoveAll(dst))
	res.addDur(rowCp, col, timed("cp -a "+root+" "+dst))
	must(os.RemoveAll(dst))
}

func report(c config, g genResult, res results, scale string) {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks\n\n`make bench` (scripts/bench), %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Machine: %s\n\n", machine(c))
	st, _ := os.Stat(filepath.Join(c.dir, "save.tar"))
	var size int64
	if st != nil {
		size = st.Size()
	}
	fmt.Fprintf(&b, "Image: %d files, %d tar entries over 3 layers (many small files, 4 large ones, a layer of whiteouts); docker save %s. "+
		"Median of %d runs (%d for extractions and cold gzip mounts); ±%% is (max-min)/median. Page cache warm; every layoutfs run starts from a fresh mount "+
		"(the rows marked again repeat the operation at once on the same mount or tree, the kernel's caches of it warm on both sides). "+
		"Ratios are the peer's time over layoutfs docker-save's (>1: layoutfs is faster).\n\n",
		c.files, g.Entries, human(size), c.runs, c.slow)
	b.WriteString("| operation |")
	for _, col := range cols {
		b.WriteString(" " + col + " |")
	}
	b.WriteString("\n|---|")
	for range cols {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, row := range rows {
		b.WriteString("| " + row + " |")
		ref := res[row][colDocker]
		for _, col := range cols {
			v := res[row][col]
			if len(v) == 0 {
				b.WriteString(" – |")
				continue
			}
			m := median(v)
			cell := fmt.Sprintf("%.3g", m)
			if row == rowCount {
				cell = fmt.Sprintf("%.0f", m)
			} else if len(v) > 1 && m > 0 {
				cell += fmt.Sprintf(" ±%.0f%%", (slices.Max(v)-slices.Min(v))/m*100)
			}
			if col != colDocker && col != colGzip && col != colDir && len(ref) > 0 && row != rowCount {
				if r := median(ref); r > 0 {
					cell += fmt.Sprintf(" (%.2g×)", m/r)
				}
			}
			b.WriteString(" " + cell + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("\nTargets of issue 4 (layoutfs docker-save):\n\n")
	med := func(row, col string) float64 {
		if v := res[row][col]; len(v) > 0 {
			return median(v)
		}
		return 0
	}
	check := func(what string, ok bool, got string) {
		mark := "MISSED"
		if ok {
			mark = "met"
		}
		fmt.Fprintf(&b, "- %s: %s (%s)\n", what, got, mark)
	}
	lfs := func(row string) float64 { return med(row, colDocker) }
	if cold, tar := lfs(rowCold), med(rowCold, colTar); cold > 0 && tar > 0 {
		check("mount to first stat, cold, <= 1 s and <= 5% of tar -x", cold <= 1 && cold <= 0.05*tar, fmt.Sprintf("%.2f s, %.1f%% of tar -x", cold, cold/tar*100))
	}
	if w := lfs(rowWarm); w > 0 {
		check("mount to first stat, warm, <= 100 ms", w <= 0.1, fmt.Sprintf("%.0f ms", w*1000))
	}
	for _, r := range []struct {
		row   string
		limit float64
		what  string
	}{{rowFind, 1.5, "find <= 1.5x the extracted tree"}, {rowCat, 2, "1,000 cats <= 2x the extracted tree"}} {
		if l, x := lfs(r.row), med(r.row, colTar); l > 0 && x > 0 {
			check(r.what, l <= r.limit*x, fmt.Sprintf("%.1fx", l/x))
		}
	}
	if l, d := lfs(rowSeq), med(rowSeq, colDD); l > 0 && d > 0 {
		check("sequential read >= 70% of dd", d/l >= 0.7, fmt.Sprintf("%.0f%%", d/l*100))
	}
	if l, x := lfs(rowCp), med(rowCold, colTar); l > 0 && x > 0 {
		check("cp -a rootfs <= 1.5x tar -x of the layers", l <= 1.5*x, fmt.Sprintf("%.1fx", l/x))
	}
	if r := lfs(rowRSS); r > 0 {
		limit := 40 + 250*float64(g.Entries)/1e6
		check(fmt.Sprintf("daemon peak RSS <= 40 MB + 250 B/entry = %.0f MB", limit), r <= limit, fmt.Sprintf("%.0f MB after all the runs above, cp -a included", r))
	}
	b.WriteString("\nSame-state pairings (informational, beside the targets above, which set a fresh mount against a hot extracted tree):\n\n")
	pair := func(what, row, col string) {
		if l, x := lfs(row), med(row, col); l > 0 && x > 0 {
			fmt.Fprintf(&b, "- %s: %.3g s against %.3g s, %.1fx\n", what, l, x, l/x)
		}
	}
	pair("find, dentries and inodes cold on both sides (fresh mount; extracted tree after sync and drop_caches 2)", rowFindCold, colTar)
	pair("find, kernel caches warm on both sides (again on the same mount; extracted tree)", rowFind2, colTar)
	pair("1,000 cats, kernel caches warm on both sides (again on the same mount; extracted tree)", rowCat2, colTar)
	if l, d := lfs(rowSeq2), med(rowSeq2, colDD); l > 0 && d > 0 {
		line := fmt.Sprintf("- sequential read, again on the same mount (its page cache warm): %.0f%% of dd", d/l*100)
		if x := med(rowSeq2, colTar); x > 0 {
			line += fmt.Sprintf(", %.1fx the extracted tree's", l/x)
		}
		b.WriteString(line + "\n")
	}
	if med(rowFind, colFloor) > 0 {
		b.WriteString("\nThe FUSE floor (the same tree served from memory through layoutfs's FUSE layer, same settings, by a server that does no work; scripts/bench/floor.go) against the same targets:\n\n")
		for _, r := range []struct {
			what, row string
			limit     float64
		}{{"find", rowFind, 1.5}, {"1,000 cats", rowCat, 2}} {
			if f, l, x := med(r.row, colFloor), lfs(r.row), med(r.row, colTar); f > 0 && l > 0 && x > 0 {
				fmt.Fprintf(&b, "- %s: the floor %.3g s, %.1fx the extracted tree (target %gx); layoutfs %.3g s, %.2fx the floor\n", r.what, f, f/x, r.limit, l, l/f)
			}
		}
		if f, l, x := med(rowFindCPU, colFloor), lfs(rowFindCPU), med(rowFindCPU, colTar); f > 0 && x > 0 {
			fmt.Fprintf(&b, "- find's own CPU time: %.3g s on the floor, %.3g s on layoutfs, %.3g s on the extracted tree (the find target is %.3g s of wall time)\n", f, l, x, 1.5*med(rowFind, colTar))
		}
		if f, l, d := med(rowSeq, colFloor), lfs(rowSeq), med(rowSeq, colDD); f > 0 && l > 0 && d > 0 {
			fmt.Fprintf(&b, "- sequential read: the floor %.0f%% of dd (target 70%%); layoutfs %.0f%%\n", d/f*100, d/l*100)
		}
	}
	b.WriteString("\nSequential read throughput: ")
	for _, col := range []string{colDocker, colGzip, colDir, colFloor, colTar, colAM, colDD} {
		if v := res[rowSeq][col]; len(v) > 0 {
			fmt.Fprintf(&b, "%s %.0f MB/s; ", col, float64(g.LargeLen)/median(v)/1e6)
		}
	}
	b.WriteString("\n\nNotes: `tar -x (+layers)` extracts the docker save and then each layer tar in order, without applying whiteouts " +
		"(so its tree keeps deleted files and .wh. markers); `tar -x gz` does the same with the gzip oci-archive; `umoci unpack` extracts the OCI dir " +
		"with whiteouts applied. archivemount mounts layer 0 only (the large file and the cat list live there): its find covers that layer, not the merged rootfs, and its cp -a is not run (minutes per run). " +
		"dd reads the large file's bytes from the docker save at their offset. " +
		"The again rows run find, the cats and the read once more right after the first pass on the same mount (layoutfs) or tree; " +
		"the drop_caches row runs `sync; echo 2 > /proc/sys/vm/drop_caches` before each find of the extracted tree (the dentries and the inodes without cached pages go), " +
		"and its layoutfs cells repeat the first find row, a fresh mount being that state.\n")
	_, hasAM := exec.LookPath("archivemount")
	if hasAM != nil {
		b.WriteString("\n**archivemount was not installed: its column is empty.**\n")
	}
	if scale != "" {
		b.WriteString("\n" + scale)
	}
	fmt.Print(b.String())
	// Hand-written notes (what each change bought, what is left) follow
	// the generated table.
	if notes, err := os.ReadFile(filepath.Join("scripts", "bench", "NOTES.md")); err == nil {
		b.WriteString("\n")
		b.Write(notes)
	}
	must(os.WriteFile(c.out, []byte(b.String()), 0o644))
	logf("wrote %s", c.out)
}

func machine(c config) string {
	cpu := output("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
	mem := output("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
	kernel := output("uname -r")
	disk := output("df -h --output=source,fstype,size " + c.dir + " | tail -1")
	dev := strings.Fields(disk)[0]
	rota := output("cat /sys/block/" + filepath.Base(dev) + "/queue/rotational 2>/dev/null || echo ?")
	return fmt.Sprintf("%s cores (%s), %s RAM, kernel %s, disk %s (rotational=%s), go-fuse v2.12.1%s",
		output("nproc"), strings.TrimSpace(cpu), mem, kernel, strings.Join(strings.Fields(disk), " "), rota, damon())
}

// damon describes a DAMON scheme that pages out idle memory, page cache
// included: an archive left alone for its age limit leaves the page cache,
// and a "warm" run would read it from disk (hence warm before each run).
func damon() string {
	const ctx = "/sys/kernel/mm/damon/admin/kdamonds/0/contexts/0/"
	read := func(p string) string {
		b, _ := os.ReadFile(p)
		return strings.TrimSpace(string(b))
	}
	if read("/sys/kernel/mm/damon/admin/kdamonds/0/state") != "on" || read(ctx+"schemes/0/action") != "pageout" {
		return ""
	}
	age, _ := strconv.ParseFloat(read(ctx+"schemes/0/access_pattern/age/min"), 64)
	aggr, _ := strconv.ParseFloat(read(ctx+"monitoring_attrs/intervals/aggr_us"), 64)
	return fmt.Sprintf("; DAMON pages out memory idle for %.0f s, so every run reads its inputs (archive, extracted tree) right before it starts", age*aggr/1e6)
}
