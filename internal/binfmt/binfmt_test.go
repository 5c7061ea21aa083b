package binfmt

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestSealRoundTripAndDamage(t *testing.T) {
	magic := []byte("test\n")
	b := Seal(magic, 3, []byte("body"))
	if body, ok := Unseal(magic, 3, b); !ok || string(body) != "body" {
		t.Fatalf("Unseal = %q, %v", body, ok)
	}
	if _, ok := Unseal(magic, 4, b); ok {
		t.Error("another version was accepted")
	}
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 1
		if _, ok := Unseal(magic, 3, bad); ok {
			t.Errorf("a flipped byte %d was accepted", i)
		}
	}
	if _, ok := Unseal(magic, 3, b[:len(b)-1]); ok {
		t.Error("a truncated frame was accepted")
	}
}

func TestDecoderStickyError(t *testing.T) {
	b := binary.AppendUvarint(nil, 300)
	b = binary.AppendVarint(b, -5)
	b = append(b, "ab"...)
	d := &Decoder{B: b}
	if d.Uvarint() != 300 || d.Varint() != -5 || string(d.Bytes(2)) != "ab" || d.Err != nil {
		t.Fatalf("decoded wrong: err %v", d.Err)
	}
	if d.Uvarint(); d.Err != ErrShort {
		t.Fatalf("reading past the end: %v", d.Err)
	}
	d.B = []byte{1}
	if d.Uvarint() != 0 || d.Bytes(1) != nil {
		t.Error("reads after an error return data")
	}
}
