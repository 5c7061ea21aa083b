package fs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUpperReplay: a journal read back keeps the last word on each path,
// shares hard links, ignores a torn last line and refuses records that
// would reach outside the rootfs or the data directory.
func TestUpperReplay(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "data"), 0o700)
	os.WriteFile(filepath.Join(dir, "data", "7"), []byte("content"), 0o600)
	journal := strings.Join([]string{
		`{"p":"a","n":{"id":1,"type":48,"mode":420,"data":"7","size":7}}`,
		`{"p":"b","n":{"id":1,"type":48,"mode":420,"data":"7","size":7}}`,
		`{"p":"a","n":{"id":1,"type":48,"mode":384,"data":"7","size":7}}`,
		`{"p":"gone","wh":true}`,
		`{"p":"tmp","n":{"id":2,"type":48,"mode":420}}`,
		`{"p":"tmp","drop":true}`,
		`{"p":"../escape","wh":true}`,
		`{"p":"/abs","wh":true}`,
		`{"p":"evil","n":{"id":3,"type":48,"data":"../../etc/passwd","size":1}}`,
		`{"p":"evil2","n":{"id":4,"type":48,"lower":"../x","size":1}}`,
		`{"p":"torn","n":{"id":5,"ty`,
	}, "\n")
	os.WriteFile(filepath.Join(dir, "journal"), []byte(journal), 0o600)
	u, err := openUpper(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer u.close()
	if got := strings.Join(u.paths(), " "); got != "a b gone" {
		t.Fatalf("paths %q, want \"a b gone\"", got)
	}
	if u.recs["a"].Node != u.recs["b"].Node || u.recs["b"].Node.Mode != 0o600 {
		t.Errorf("hard link not shared, or its last metadata lost: %+v %+v", u.recs["a"].Node, u.recs["b"].Node)
	}
	if !u.recs["gone"].Whiteout {
		t.Errorf("gone: not a whiteout")
	}
	if id := u.newID(); id <= 7 {
		t.Errorf("new id %d reuses a data file's number", id)
	}
	// Compacted: reopening gives the same records.
	u2, err := readUpper(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(u2.paths(), " "); got != "a b gone" {
		t.Errorf("after compaction: %q", got)
	}
}
