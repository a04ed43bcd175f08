package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
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

// Once a download ran out of space, the downloads cut short after it (the
// rest of the run, cancelled) keep no partial either: it would hold space
// the user has to free. Before that, a cut download keeps its partial.
func TestFetchKeepsNoPartialOnceFull(t *testing.T) {
	ctx := context.Background()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	partials := func() int {
		ents, _ := os.ReadDir(filepath.Join(c.Dir(), "tmp"))
		return len(ents)
	}
	cut := func(data []byte, why error) OpenFunc {
		return func(context.Context, int64) (io.ReadCloser, error) {
			return io.NopCloser(io.MultiReader(bytes.NewReader(data[:len(data)/2]), errReader{why})), nil
		}
	}
	a, b := bytes.Repeat([]byte("a"), 1<<16), bytes.Repeat([]byte("b"), 1<<16)
	if _, err := c.Fetch(ctx, digest.FromBytes(a), int64(len(a)), cut(a, context.Canceled), FetchProgress{}); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if partials() != 1 {
		t.Fatalf("a cancelled download kept %d partials, want 1 (to resume)", partials())
	}
	if _, err := c.Fetch(ctx, digest.FromBytes(b), int64(len(b)), cut(b, syscall.ENOSPC), FetchProgress{}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	if _, err := c.Fetch(ctx, digest.FromBytes(a), int64(len(a)), cut(a, context.Canceled), FetchProgress{}); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if n := partials(); n != 0 {
		t.Errorf("after a full disk, %d partials kept, want none", n)
	}
}
