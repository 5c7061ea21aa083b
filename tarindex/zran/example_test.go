package zran_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/layoutfs/layoutfs/tarindex/zran"
)

func Example() {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, strings.Repeat("all work and no play makes jack a dull boy\n", 100000))
	zw.Close()

	// One pass over the stream: the caller sees every byte (here it only
	// counts them) and gets the checkpoint index.
	n := new(countWriter)
	ix, err := zran.Build(bytes.NewReader(gz.Bytes()), n, zran.Options{Span: 1 << 20})
	if err != nil {
		log.Fatal(err)
	}

	// The index is saved next to the archive and loaded later.
	saved, err := ix.MarshalBinary()
	if err != nil {
		log.Fatal(err)
	}
	var loaded zran.Index
	if err := loaded.UnmarshalBinary(saved); err != nil {
		log.Fatal(err)
	}

	// Reads at any offset inflate from the nearest checkpoint only.
	r := loaded.ReaderAt(bytes.NewReader(gz.Bytes()))
	p := make([]byte, 16)
	if _, err := r.ReadAt(p, 3_000_005); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d bytes, %d checkpoints, %q\n", *n, len(loaded.Checkpoints), p)
	// Output: 4300000 bytes, 2 checkpoints, "es jack a dull b"
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}
