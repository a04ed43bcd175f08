package sums

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var (
	a = strings.Repeat("a", 64)
	b = strings.Repeat("0123456789abcdef", 4)
	c = strings.Repeat("c", 64)
)

func TestParse(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want Sums
		bad  []int // line numbers reported bad
	}{
		{"text mode", a + "  apps.tar\n", Sums{"apps.tar": a}, nil},
		{"binary mode", a + " *apps.tar\n", Sums{"apps.tar": a}, nil},
		{"both forms", a + "  apps.tar\n" + b + " *base.tar.zst\n", Sums{"apps.tar": a, "base.tar.zst": b}, nil},
		{"upper-case hex", strings.ToUpper(b) + "  x.tar\n", Sums{"x.tar": b}, nil},
		{"no final newline", a + "  x.tar", Sums{"x.tar": a}, nil},
		{"CRLF", a + "  x.tar\r\n" + b + " *y.tar\r\n", Sums{"x.tar": a, "y.tar": b}, nil},
		{"empty lines ignored", "\n" + a + "  x.tar\n\n", Sums{"x.tar": a}, nil},
		{"name with spaces", a + "  my archive.tar\n", Sums{"my archive.tar": a}, nil},
		{"later line wins", a + "  x.tar\n" + b + "  x.tar\n", Sums{"x.tar": b}, nil},
		{"empty file", "", Sums{}, nil},
		{
			name: "bad lines skipped",
			in: strings.Join([]string{
				a + "  good.tar",
				a + " good.tar",        // one space
				a + "\tgood.tar",       // tab
				a[:63] + "  short.tar", // 63 digits
				a + "a  long.tar",      // 65 digits
				strings.Repeat("g", 64) + "  nothex.tar",
				a + "  ",                   // no name
				a + "  dir/x.tar",          // path
				a + `  dir\x.tar`,          // Windows path, or GNU escaping
				a + "  ..",                 // parent
				a + "  .",                  // directory itself
				"\\" + a + "  escaped.tar", // GNU escaped line
				"garbage",
				b + " *also-good.tar",
			}, "\n"),
			want: Sums{"good.tar": a, "also-good.tar": b},
			bad:  []int{2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, bad := Parse([]byte(tc.in))
			if !maps.Equal(got, tc.want) {
				t.Errorf("Parse = %v, want %v", got, tc.want)
			}
			var lines []int
			for _, bl := range bad {
				lines = append(lines, bl.Line)
				if bl.Reason == "" || !strings.Contains(bl.Error(), "line ") {
					t.Errorf("bad line %d has no reason: %v", bl.Line, bl)
				}
			}
			if !slices.Equal(lines, tc.bad) {
				t.Errorf("bad lines %v, want %v (%v)", lines, tc.bad, bad)
			}
		})
	}
}

func TestFormatRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		s    Sums
		want string
	}{
		{"empty", Sums{}, ""},
		{"one", Sums{"apps.tar": a}, a + "  apps.tar\n"},
		{"sorted by name", Sums{"z.tar": c, "a.tar.zst": a, "m.tgz": b}, a + "  a.tar.zst\n" + b + "  m.tgz\n" + c + "  z.tar\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, err := Format(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != tc.want {
				t.Errorf("Format = %q, want %q", data, tc.want)
			}
			back, bad := Parse(data)
			if len(bad) != 0 || !maps.Equal(back, tc.s) {
				t.Errorf("Parse(Format(s)) = %v, %v; want %v", back, bad, tc.s)
			}
			// And through a file.
			path := filepath.Join(t.TempDir(), FileName)
			if err := Write(path, tc.s); err != nil {
				t.Fatal(err)
			}
			read, err := Read(path)
			if err != nil || !maps.Equal(read, tc.s) {
				t.Errorf("Read(Write(s)) = %v, %v; want %v", read, err, tc.s)
			}
		})
	}
}

func TestFormatRefuses(t *testing.T) {
	cases := []struct {
		name string
		s    Sums
	}{
		{"path", Sums{"dir/x.tar": a}},
		{"backslash", Sums{`x\y.tar`: a}},
		{"dot-dot", Sums{"..": a}},
		{"empty name", Sums{"": a}},
		{"newline in name", Sums{"x\n.tar": a}},
		{"short sum", Sums{"x.tar": a[:10]}},
		{"upper-case sum", Sums{"x.tar": strings.ToUpper(b)}},
		{"not hex", Sums{"x.tar": strings.Repeat("z", 64)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if data, err := Format(tc.s); err == nil {
				t.Errorf("Format = %q, want an error", data)
			}
			dir := t.TempDir()
			if err := Write(filepath.Join(dir, FileName), tc.s); err == nil {
				t.Error("Write succeeded")
			}
			if es, _ := os.ReadDir(dir); len(es) != 0 {
				t.Errorf("Write left %v", es)
			}
		})
	}
}

func TestReadMissing(t *testing.T) {
	_, err := Read(filepath.Join(t.TempDir(), FileName))
	if !errors.Is(err, ErrMissing) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read of a missing file: %v, want ErrMissing matching fs.ErrNotExist", err)
	}
	// bundler.Verify shows this text after "SHA256SUMS: ".
	if err.Error() != "missing from the output directory" {
		t.Errorf("message %q", err)
	}
}

func TestUpdate(t *testing.T) {
	cases := []struct {
		name  string
		files []string // archives present in the directory
		old   string   // SHA256SUMS before; "-" for none
		fresh Sums
		want  string
	}{
		{
			name:  "no old file",
			files: []string{"a.tar"},
			old:   "-",
			fresh: Sums{"a.tar": a},
			want:  a + "  a.tar\n",
		},
		{
			name:  "fresh line replaces old",
			files: []string{"a.tar"},
			old:   c + "  a.tar\n",
			fresh: Sums{"a.tar": a},
			want:  a + "  a.tar\n",
		},
		{
			name:  "other archive kept while it exists",
			files: []string{"a.tar", "b.tar"},
			old:   b + "  b.tar\n" + c + "  a.tar\n",
			fresh: Sums{"a.tar": a},
			want:  a + "  a.tar\n" + b + "  b.tar\n",
		},
		{
			name:  "other archive dropped once its file is gone",
			files: []string{"a.tar"},
			old:   b + "  gone.tar\n" + c + "  a.tar\n",
			fresh: Sums{"a.tar": a},
			want:  a + "  a.tar\n",
		},
		{
			name:  "binary-mode and upper-case old lines kept, rewritten",
			files: []string{"a.tar", "b.tar"},
			old:   strings.ToUpper(b) + " *b.tar\n",
			fresh: Sums{"a.tar": a},
			want:  a + "  a.tar\n" + b + "  b.tar\n",
		},
		{
			name:  "bad old lines dropped",
			files: []string{"a.tar", "b.tar"},
			old:   "garbage\n" + b + "  ../b.tar\n" + c + " b.tar\n",
			fresh: Sums{"a.tar": a},
			want:  a + "  a.tar\n",
		},
		{
			name:  "sorted",
			files: []string{"z.tar", "m.tar", "a.tar"},
			old:   c + "  z.tar\n" + b + "  m.tar\n",
			fresh: Sums{"a.tar": a},
			want:  a + "  a.tar\n" + b + "  m.tar\n" + c + "  z.tar\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.old != "-" {
				if err := os.WriteFile(filepath.Join(dir, FileName), []byte(tc.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := Update(dir, tc.fresh); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dir, FileName))
			if err != nil || string(got) != tc.want {
				t.Errorf("SHA256SUMS = %q, %v; want %q", got, err, tc.want)
			}
			if st, err := os.Stat(filepath.Join(dir, FileName)); err != nil || st.Mode().Perm() != 0o644 {
				t.Errorf("mode %v, %v", st.Mode().Perm(), err)
			}
			es, _ := os.ReadDir(dir)
			if len(es) != len(tc.files)+1 {
				t.Errorf("directory holds %d entries, want %d (temporary file left?)", len(es), len(tc.files)+1)
			}
		})
	}
}

func hexSum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// A commit interrupted after renaming one of two archives (journal present):
// Recover gives each archive the line of the content it actually holds,
// keeps untouched files, drops what is gone or matches neither, and removes
// the journal.
func TestRecoverInterruptedCommit(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Before the build: a.tar, b.tar, keep.tar (not rebuilt), gone.tar
	// (listed, since deleted), odd.tar (matches neither line).
	write("a.tar", "new a") // renamed into place before the crash
	write("b.tar", "old b") // not yet renamed
	write("keep.tar", "keep")
	write("odd.tar", "something else")
	write(".b.tar.tmp-123", "new b") // the crash left it
	oldSums := Sums{"a.tar": hexSum("old a"), "b.tar": hexSum("old b"), "keep.tar": hexSum("keep"), "gone.tar": c, "odd.tar": hexSum("odd")}
	if err := Write(filepath.Join(dir, FileName), oldSums); err != nil {
		t.Fatal(err)
	}
	next := Merge(dir, Sums{"a.tar": hexSum("new a"), "b.tar": hexSum("new b"), "odd.tar": hexSum("new odd"), "new.tar": hexSum("new")})
	if err := WritePending(dir, next); err != nil {
		t.Fatal(err)
	}

	ok, err := Recover(dir)
	if err != nil || !ok {
		t.Fatalf("Recover = %v, %v", ok, err)
	}
	got, err := Read(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	want := Sums{"a.tar": hexSum("new a"), "b.tar": hexSum("old b"), "keep.tar": hexSum("keep")}
	if !maps.Equal(got, want) {
		t.Errorf("SHA256SUMS after recovery:\n got %v\nwant %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, PendingName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("journal still there: %v", err)
	}
	// Every line agrees with its file, as sha256sum -c checks.
	for name, sum := range got {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		if hexSum(string(b)) != sum {
			t.Errorf("%s: line %s, file %s", name, sum, hexSum(string(b)))
		}
	}
	// Without a journal, Recover changes nothing.
	before, _ := os.ReadFile(filepath.Join(dir, FileName))
	if ok, err := Recover(dir); ok || err != nil {
		t.Errorf("second Recover = %v, %v", ok, err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, FileName)); string(after) != string(before) {
		t.Error("Recover without a journal rewrote SHA256SUMS")
	}
}

// The full protocol, and a crash right after the journal is written (no
// archive renamed yet) or right before it replaces SHA256SUMS.
func TestPendingProtocol(t *testing.T) {
	for _, renamed := range []bool{false, true} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "a.tar"), []byte("old"), 0o644)
		Write(filepath.Join(dir, FileName), Sums{"a.tar": hexSum("old")})
		if err := WritePending(dir, Sums{"a.tar": hexSum("new")}); err != nil {
			t.Fatal(err)
		}
		want := hexSum("old")
		if renamed {
			os.WriteFile(filepath.Join(dir, "a.tar"), []byte("new"), 0o644)
			want = hexSum("new")
		}
		if _, err := Recover(dir); err != nil {
			t.Fatal(err)
		}
		if got, _ := Read(filepath.Join(dir, FileName)); got["a.tar"] != want || len(got) != 1 {
			t.Errorf("renamed=%v: %v", renamed, got)
		}
	}
	dir := t.TempDir()
	if err := WritePending(dir, Sums{"a.tar": a}); err != nil {
		t.Fatal(err)
	}
	if err := CommitPending(dir); err != nil {
		t.Fatal(err)
	}
	if got, _ := Read(filepath.Join(dir, FileName)); got["a.tar"] != a {
		t.Errorf("after CommitPending: %v", got)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("directory holds %v", es)
	}
}
