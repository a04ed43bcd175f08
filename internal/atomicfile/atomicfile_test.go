package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// failingReader gives some bytes, then an error: a download that breaks
// half way.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("connection reset")
	}
	n := min(len(p), r.n)
	for i := range p[:n] {
		p[i] = 'x'
	}
	r.n -= n
	return n, nil
}

// entries lists a directory's names.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestFile(t *testing.T) {
	const old = "old content\n"
	cases := []struct {
		name   string
		mode   fs.FileMode
		write  func(f *File) error // nil error: Commit follows
		commit bool                // whether write's success leads to Commit
		want   string              // target content afterwards
		ok     bool
	}{
		{
			name:   "success",
			mode:   0o640,
			write:  func(f *File) error { _, err := io.WriteString(f, "new content\n"); return err },
			commit: true,
			want:   "new content\n",
			ok:     true,
		},
		{
			name:   "empty",
			mode:   0o600,
			write:  func(f *File) error { return nil },
			commit: true,
			want:   "",
			ok:     true,
		},
		{
			name:   "error mid-write",
			mode:   0o644,
			write:  func(f *File) error { _, err := io.Copy(f, &failingReader{n: 100 << 10}); return err },
			commit: true,
			want:   old,
		},
		{
			name:  "abort",
			mode:  0o644,
			write: func(f *File) error { _, err := io.WriteString(f, "never seen"); return err },
			want:  old,
			ok:    true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "out.tar")
			if err := os.WriteFile(target, []byte(old), 0o666); err != nil {
				t.Fatal(err)
			}
			f, err := Create(target, tc.mode)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if base := filepath.Base(f.Name()); filepath.Dir(f.Name()) != dir || !strings.HasPrefix(base, ".out.tar.tmp-") {
				t.Errorf("temporary file %s: want .out.tar.tmp-* in %s", f.Name(), dir)
			}
			err = tc.write(f)
			if err == nil {
				if tc.commit {
					err = f.Commit()
				} else {
					err = f.Abort()
				}
			}
			if tc.ok != (err == nil) {
				t.Fatalf("error = %v, want ok = %v", err, tc.ok)
			}
			f.Close() // what the deferred Close does on an error path
			got, err := os.ReadFile(target)
			if err != nil || string(got) != tc.want {
				t.Errorf("target = %q, %v; want %q", got, err, tc.want)
			}
			if es := entries(t, dir); len(es) != 1 {
				t.Errorf("directory holds %v, want only out.tar", es)
			}
			if tc.ok && tc.commit {
				st, err := os.Stat(target)
				if err != nil || st.Mode().Perm() != tc.mode {
					t.Errorf("mode = %v, %v; want %v", st.Mode().Perm(), err, tc.mode)
				}
				if _, err := f.Write([]byte("late")); !errors.Is(err, ErrClosed) {
					t.Errorf("Write after Commit: %v, want ErrClosed", err)
				}
				if err := f.Commit(); !errors.Is(err, ErrClosed) {
					t.Errorf("second Commit: %v, want ErrClosed", err)
				}
			}
		})
	}
}

// A failed rename (here onto a non-empty directory) removes the temporary
// file and leaves the target as it was.
func TestCommitRenameFails(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.MkdirAll(filepath.Join(target, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := Create(target, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err == nil {
		t.Fatal("Commit onto a non-empty directory succeeded")
	}
	if es := entries(t, dir); len(es) != 1 || es[0] != "target" {
		t.Errorf("directory holds %v, want only target", es)
	}
	if es := entries(t, target); len(es) != 1 || es[0] != "inside" {
		t.Errorf("target changed: %v", es)
	}
}

func TestCreateIn(t *testing.T) {
	dir := t.TempDir()
	tmpDir := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmpDir, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "blob")
	f, err := CreateIn(tmpDir, target, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if filepath.Dir(f.Name()) != tmpDir {
		t.Errorf("temporary file %s is not in %s", f.Name(), tmpDir)
	}
	if _, err := f.Write([]byte("blob")); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(target); err != nil || string(got) != "blob" {
		t.Errorf("target = %q, %v", got, err)
	}
	if es := entries(t, tmpDir); len(es) != 0 {
		t.Errorf("temporary files left: %v", es)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		path string
		data string
		mode fs.FileMode
		ok   bool
	}{
		{"new", filepath.Join(dir, "a"), "one", 0o644, true},
		{"replace", filepath.Join(dir, "a"), "two", 0o600, true},
		{"missing directory", filepath.Join(dir, "nope", "b"), "three", 0o644, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteFile(tc.path, []byte(tc.data), tc.mode)
			if tc.ok != (err == nil) {
				t.Fatalf("WriteFile: %v", err)
			}
			if !tc.ok {
				return
			}
			got, err := os.ReadFile(tc.path)
			if err != nil || string(got) != tc.data {
				t.Errorf("content = %q, %v; want %q", got, err, tc.data)
			}
			if st, _ := os.Stat(tc.path); st.Mode().Perm() != tc.mode {
				t.Errorf("mode = %v, want %v", st.Mode().Perm(), tc.mode)
			}
		})
	}
	if es := entries(t, dir); len(es) != 1 || es[0] != "a" {
		t.Errorf("directory holds %v, want only a", es)
	}
}

// RemoveStale removes the temporary files of dead writers only.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	f, err := Create(filepath.Join(dir, "mine.tar"), 0o644) // this process: alive
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !strings.Contains(filepath.Base(f.Name()), ".tmp-p"+strconv.Itoa(os.Getpid())+"-") {
		t.Errorf("temporary file %s does not carry the PID", f.Name())
	}
	stale := filepath.Join(dir, ".old.tar.tmp-p"+strconv.Itoa(cmd.Process.Pid)+"-99")
	keep := []string{f.Name(), filepath.Join(dir, "old.tar"), filepath.Join(dir, ".x.tmp-pabc-1"), filepath.Join(dir, ".y.tmp-123")}
	for _, p := range append([]string{stale}, keep[1:]...) {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := RemoveStale(dir)
	if err != nil || len(removed) != 1 || removed[0] != stale {
		t.Errorf("RemoveStale = %v, %v; want [%s]", removed, err, stale)
	}
	for _, p := range keep {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed", p)
		}
	}
	if r, err := RemoveStale(filepath.Join(dir, "missing")); err != nil || r != nil {
		t.Errorf("missing dir: %v %v", r, err)
	}
}

// Sync completes the temporary file without touching the target: Abort
// after it removes the file, Commit after it only renames.
func TestSyncThenAbortOrCommit(t *testing.T) {
	for _, commit := range []bool{false, true} {
		dir := t.TempDir()
		target := filepath.Join(dir, "out.tar")
		if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := Create(target, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("new")); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(target); string(got) != "old" {
			t.Errorf("target changed by Sync: %q", got)
		}
		if st, err := os.Stat(f.Name()); err != nil || st.Size() != 3 || st.Mode().Perm() != 0o640 {
			t.Errorf("temporary file after Sync: %v %v", st, err)
		}
		if _, err := f.Write([]byte("late")); !errors.Is(err, ErrClosed) {
			t.Errorf("Write after Sync: %v, want ErrClosed", err)
		}
		want, n := "old", 1
		if commit {
			want = "new"
			if err := f.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
		if got, _ := os.ReadFile(target); string(got) != want {
			t.Errorf("commit=%v: target %q, want %q", commit, got, want)
		}
		if es := entries(t, dir); len(es) != n {
			t.Errorf("commit=%v: directory holds %v", commit, es)
		}
	}
}

func TestRename(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("A"), 0o644)
	os.WriteFile(b, []byte("B"), 0o644)
	if err := Rename(a, b); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(b); string(got) != "A" {
		t.Errorf("b = %q", got)
	}
	if es := entries(t, dir); len(es) != 1 {
		t.Errorf("directory holds %v", es)
	}
}

func TestPublish(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "blob")
	f, err := CreateIn(filepath.Join(dir), target, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("content")); err != nil {
		t.Fatal(err)
	}
	if err := f.Publish(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(target)
	if err != nil || string(got) != "content" {
		t.Fatalf("target = %q, %v; want content", got, err)
	}
	if st, _ := os.Stat(target); st.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640", st.Mode().Perm())
	}
	if err := f.Publish(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Publish: %v, want ErrClosed", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the target", len(ents))
	}
}

// SyncAhead flushes a large file in the background as it is written, one
// fdatasync at a time; Commit and Abort wait for it, and the content is
// whole.
func TestSyncAhead(t *testing.T) {
	var mu sync.Mutex
	calls, running, overlap := 0, 0, false
	real := dataSync
	dataSync = func(f *os.File) error {
		mu.Lock()
		calls++
		running++
		overlap = overlap || running > 1
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		err := real(f)
		mu.Lock()
		running--
		mu.Unlock()
		return err
	}
	t.Cleanup(func() { dataSync = real })

	chunk := make([]byte, 1<<20)
	for _, commit := range []bool{true, false} {
		calls = 0
		dir := t.TempDir()
		target := filepath.Join(dir, "big")
		f, err := Create(target, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.SyncAhead()
		for i := 0; i < 4*syncAheadChunk/len(chunk); i++ {
			chunk[0] = byte(i)
			if _, err := f.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		if !commit {
			if err := f.Abort(); err != nil {
				t.Fatal(err)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Fatalf("Abort left %d files", len(ents))
			}
			continue
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		n, over, run := calls, overlap, running
		mu.Unlock()
		if n < 1 || over || run != 0 {
			t.Errorf("background syncs: %d calls, overlapping %v, %d still running after Commit", n, over, run)
		}
		if st, err := os.Stat(target); err != nil || st.Size() != 4*syncAheadChunk {
			t.Fatalf("target: %v, %v", st, err)
		}
	}
}
