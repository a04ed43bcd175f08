package cache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// Prune by age and by what is kept; a partial download a run holds is
// left alone; an open cache refuses the prune.
func TestPrune(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	put := func(s string) digest.Digest {
		d := digest.FromString(s)
		if err := c.Put(context.Background(), d, int64(len(s)), bytes.NewReader([]byte(s))); err != nil {
			t.Fatal(err)
		}
		return d
	}
	oldKept, oldGone, fresh := put("old, kept"), put("old, not kept"), put("fresh")
	past := time.Now().Add(-48 * time.Hour)
	for _, d := range []digest.Digest{oldKept, oldGone} {
		os.Chtimes(filepath.Join(dir, "blobs", "sha256", d.Encoded()), past, past)
	}
	held := filepath.Join(dir, "tmp", "held.partial")
	os.WriteFile(held, []byte("x"), 0o600)
	f, _ := os.Open(held)
	if !tryLock(f) {
		t.Skip("no flock here")
	}
	os.WriteFile(filepath.Join(dir, "tmp", "left.partial"), []byte("y"), 0o600)

	if _, err := Prune(dir, PruneOptions{OlderThan: time.Hour}); !errors.Is(err, ErrBusy) {
		t.Fatalf("prune of an open cache: %v", err)
	}
	c.Close()
	p, err := Prune(dir, PruneOptions{OlderThan: time.Hour, Keep: func(d digest.Digest) bool { return d == oldKept }})
	if err != nil {
		t.Fatal(err)
	}
	if p.Blobs.Files != 1 || p.Kept.Files != 2 {
		t.Errorf("pruned %+v", p)
	}
	for d, want := range map[digest.Digest]bool{oldKept: true, oldGone: false, fresh: true} {
		_, err := os.Stat(filepath.Join(dir, "blobs", "sha256", d.Encoded()))
		if (err == nil) != want {
			t.Errorf("%s: present %v, want %v", d, err == nil, want)
		}
	}
	p, err = Prune(dir, PruneOptions{Keep: func(digest.Digest) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(held); err != nil || p.Partials.Files != 1 {
		t.Errorf("partials: held one %v, pruned %d (want the free one only)", err, p.Partials.Files)
	}
	f.Close()
	if _, err := Prune(dir, PruneOptions{}); err == nil {
		t.Error("a prune with nothing to keep and no age was accepted")
	}
}
