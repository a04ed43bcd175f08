package archive

import (
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
