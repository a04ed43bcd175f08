package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplitPart(t *testing.T) {
	for _, c := range []struct {
		file, archive string
		i, n          int
		ok            bool
	}{
		{"core.part-2-of-3.tar.zst", "core.tar.zst", 2, 3, true},
		{"k3s.v1.28.part-1-of-12.tgz", "k3s.v1.28.tgz", 1, 12, true},
		{"a.part-1-of-1.tar", "a.tar", 1, 1, true},
		{"core.tar.zst", "", 0, 0, false},
		{"core.part-4-of-3.tar", "", 0, 0, false},
		{"core.part-0-of-3.tar", "", 0, 0, false},
		{"core.part-01-of-3.tar", "", 0, 0, false}, // not a name PartName writes
		{"core.part-1-of-3.zip", "", 0, 0, false},
		{"core.part-x-of-3.tar", "", 0, 0, false},
	} {
		a, i, n, ok := SplitPart(c.file)
		if a != c.archive || i != c.i || n != c.n || ok != c.ok {
			t.Errorf("SplitPart(%s) = %s %d %d %v", c.file, a, i, n, ok)
		}
		if ok && PartName(a, i, n) != c.file {
			t.Errorf("PartName(%s, %d, %d) != %s", a, i, n, c.file)
		}
	}
}

// A directory with some parts of an archive and not the others is an
// error naming every missing part; a part given by name is taken alone.
func TestFilesMissingParts(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"core.part-1-of-3.tar.zst", "core.part-3-of-3.tar.zst", "extra.part-2-of-2.tar", "whole.tar"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Files([]string{dir})
	if !errors.Is(err, ErrMissingPart) {
		t.Fatalf("Files = %v, want ErrMissingPart", err)
	}
	for _, want := range []string{"core.part-2-of-3.tar.zst (part 2 of the 3 of core.tar.zst)", "extra.part-1-of-2.tar"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v does not name %s", err, want)
		}
	}
	if got, err := Files([]string{filepath.Join(dir, "core.part-1-of-3.tar.zst")}); err != nil || len(got) != 1 {
		t.Errorf("one part by name: %v, %v", got, err)
	}
}

// Join rebuilds a cut archive from its chunks and checks it; a missing or
// damaged chunk is an error naming it, and nothing is written.
func TestJoin(t *testing.T) {
	dir := t.TempDir()
	whole := filepath.Join(dir, "x.part-2-of-2.tar")
	data := strings.Repeat("archive bytes ", 1000)
	sum := sha256.Sum256([]byte(data))
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("x.part-2-of-2.tar.chunk-1-of-3", data[:5000])
	write("x.part-2-of-2.tar.chunk-2-of-3", data[5000:10000])
	write("x.part-2-of-2.tar.chunk-3-of-3", data[10000:])
	write("x.part-2-of-2.tar.sha256", hex.EncodeToString(sum[:])+"  x.part-2-of-2.tar\n")
	got, err := Join(context.Background(), whole)
	if err != nil || got != hex.EncodeToString(sum[:]) {
		t.Fatalf("Join = %s, %v", got, err)
	}
	if b, _ := os.ReadFile(whole); string(b) != data {
		t.Fatal("the joined file is not the chunks in order")
	}
	os.Remove(whole)
	write("x.part-2-of-2.tar.chunk-2-of-3", "damaged")
	if _, err := Join(context.Background(), whole); err == nil || !strings.Contains(err.Error(), "a chunk is damaged") {
		t.Errorf("damaged chunk: %v", err)
	}
	os.Remove(filepath.Join(dir, "x.part-2-of-2.tar.chunk-3-of-3"))
	if _, err := Join(context.Background(), whole); !errors.Is(err, ErrMissingChunk) || !strings.Contains(err.Error(), "chunk-3-of-3") {
		t.Errorf("missing chunk: %v", err)
	}
	if _, err := os.Stat(whole); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed join left %s", whole)
	}
	if _, err := Join(context.Background(), filepath.Join(dir, "other.tar")); err == nil {
		t.Error("joined an archive that was never cut")
	}
}
