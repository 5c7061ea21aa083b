// Package tartest rewrites tar archives for tests: a real fixture with some
// of its members changed, everything else byte for byte as it was.
package tartest

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"
)

// Edit returns the tar archive with each member named in edit replaced by
// what its function makes of the member's bytes (its header's size
// following). It fails t if the archive does not read or a member named in
// edit is not in it.
func Edit(t testing.TB, archive []byte, edit map[string]func([]byte) []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tr, tw := tar.NewReader(bytes.NewReader(archive)), tar.NewWriter(&buf)
	done := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("tartest: %v", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("tartest: %s: %v", h.Name, err)
		}
		if f, ok := edit[h.Name]; ok {
			body = f(body)
			h.Size = int64(len(body))
			done[h.Name] = true
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tartest: %s: %v", h.Name, err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatalf("tartest: %s: %v", h.Name, err)
		}
	}
	for name := range edit {
		if !done[name] {
			t.Fatalf("tartest: no member %s to edit", name)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("tartest: %v", err)
	}
	return buf.Bytes()
}

// Replace is Edit with the new bytes given: each member named in repl
// becomes its bytes.
func Replace(t testing.TB, archive []byte, repl map[string][]byte) []byte {
	t.Helper()
	edit := make(map[string]func([]byte) []byte, len(repl))
	for name, b := range repl {
		edit[name] = func([]byte) []byte { return b }
	}
	return Edit(t, archive, edit)
}
