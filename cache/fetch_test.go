package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
)

// source serves a blob from an offset, optionally cutting the body after
// cut bytes, and records the offsets asked for.
type source struct {
	data    []byte
	cut     int64 // -1: never
	offsets []int64
}

func (s *source) open(_ context.Context, offset int64) (io.ReadCloser, error) {
	s.offsets = append(s.offsets, offset)
	b := s.data[offset:]
	if s.cut >= 0 && s.cut < int64(len(b)) {
		return io.NopCloser(io.MultiReader(bytes.NewReader(b[:s.cut]), errReader{io.ErrUnexpectedEOF})), nil
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestFetchResumes(t *testing.T) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	d := digest.FromBytes(data)
	size := int64(len(data))

	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src := &source{data: data, cut: 20000}
	var got int64
	if _, err := c.Fetch(ctx, d, size, src.open, FetchProgress{Received: func(n int64) { got += n }}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut body: %v", err)
	}
	if c.Has(d, size) {
		t.Fatal("a cut download entered the cache")
	}
	// The rest, resumed from where it stopped (as a later run would).
	src.cut = -1
	resumed, err := c.Fetch(ctx, d, size, src.open, FetchProgress{Received: func(n int64) { got += n }})
	if err != nil {
		t.Fatal(err)
	}
	if resumed != 20000 || len(src.offsets) != 2 || src.offsets[1] != 20000 || got != size {
		t.Errorf("resumed from %d, offsets %v, %d bytes received; want 20000, [0 20000], %d", resumed, src.offsets, got, size)
	}
	if !c.Has(d, size) {
		t.Fatal("resumed blob not in the cache")
	}
	if entries, _ := os.ReadDir(filepath.Join(c.Dir(), "tmp")); len(entries) != 0 {
		t.Errorf("tmp/ keeps %d files after a complete fetch", len(entries))
	}
}

// A partial whose bytes are wrong is found out at the end, deleted, and
// never enters the cache: the next fetch starts over.
func TestFetchCorruptPartialStartsOver(t *testing.T) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), 10000)
	d := digest.FromBytes(data)
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(c.Dir(), "tmp", d.Encoded()+".partial")
	if err := os.WriteFile(partial, bytes.Repeat([]byte("y"), 3000), 0o600); err != nil {
		t.Fatal(err)
	}
	src := &source{data: data, cut: -1}
	if _, err := c.Fetch(ctx, d, int64(len(data)), src.open, FetchProgress{}); !errors.Is(err, ErrDigest) {
		t.Fatalf("corrupt partial: %v", err)
	}
	if c.Has(d, -1) {
		t.Fatal("corrupt content entered the cache")
	}
	if _, err := os.Stat(partial); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("corrupt partial kept")
	}
	if _, err := c.Fetch(ctx, d, int64(len(data)), src.open, FetchProgress{}); err != nil || !c.Has(d, int64(len(data))) {
		t.Fatalf("second fetch: %v", err)
	}
	if src.offsets[len(src.offsets)-1] != 0 {
		t.Errorf("second fetch asked from %d, want 0", src.offsets[len(src.offsets)-1])
	}
}
