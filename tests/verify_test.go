package tests

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestVerifyCommand: `layoutfs verify` prints one line per problem and a
// summary, exits 1 on the broken fixture and 0 on good ones (notes for a
// partial layout do not fail it); --json says the same for machines.
func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	bad := mntRun(t, "verify", "--cache-dir", t.TempDir(), mntFixture(t, "X-ocitools-aufs-whiteouts-BADDIGESTS"))
	if bad.code != 1 {
		t.Fatalf("verify of the broken fixture: %s", bad)
	}
	lines := strings.Split(strings.TrimSpace(bad.stdout), "\n")
	if len(lines) != 5 || !strings.Contains(lines[4], "FAILED") || !strings.Contains(lines[4], "4 errors") {
		t.Errorf("want 4 error lines and a FAILED summary:\n%s", bad.stdout)
	}
	for _, want := range []string{"44136fa355b3", "da55812559de", "6c9c1b8d1adb", "descriptor says 2 bytes, blob has 1485", "digest mismatch"} {
		if !strings.Contains(bad.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, bad.stdout)
		}
	}

	partial := mntRunOK(t, "verify", "--cache-dir", t.TempDir(), mntFixture(t, "B-orasgo-hello-world-containerd-export.tar"))
	if !strings.Contains(partial.stdout, "missing (partial layout)") || !strings.Contains(partial.stdout, ": OK:") {
		t.Errorf("partial layout: want notes and OK:\n%s", partial.stdout)
	}

	js := mntRun(t, "verify", "--json", "--cache-dir", t.TempDir(), mntFixture(t, "X-ocitools-aufs-whiteouts-BADDIGESTS"))
	var rep struct {
		OK       bool `json:"ok"`
		Problems []struct {
			Kind, Blob, Message string
			Note                bool
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(js.stdout), &rep); err != nil || js.code != 1 {
		t.Fatalf("verify --json: %v\n%s", err, js)
	}
	kinds := map[string]int{}
	for _, p := range rep.Problems {
		kinds[p.Kind]++
	}
	if rep.OK || kinds["digest"] != 2 || kinds["size"] != 2 || len(rep.Problems) != 4 {
		t.Errorf("verify --json: ok %v, problems %+v", rep.OK, rep.Problems)
	}
}
