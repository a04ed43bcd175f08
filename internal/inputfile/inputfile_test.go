package inputfile

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "spec.toml")
	if err := os.WriteFile(regular, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("x"), 1025), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.toml")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}
	devLink := filepath.Join(dir, "zero.yaml")
	if err := os.Symlink("/dev/zero", devLink); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		want       string // contents, when no error
		class      error
		msg        string
	}{
		{"regular", regular, "abc", nil, ""},
		{"symlink to a regular file", link, "abc", nil, ""},
		{"one byte over the cap", big, "", ErrTooLarge, "over the 1 KiB cap"},
		{"device", "/dev/zero", "", ErrNotRegular, "a character device"},
		{"symlink to a device", devLink, "", ErrNotRegular, "a character device"},
		{"fifo", fifo, "", ErrNotRegular, "a FIFO"},
		{"directory", dir, "", ErrNotRegular, "a directory"},
		{"procfs file larger than its size says", "/proc/self/smaps", "", ErrTooLarge, "over the 1 KiB cap"},
		{"missing", filepath.Join(dir, "nope"), "", os.ErrNotExist, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan struct{})
			var got []byte
			var err error
			go func() {
				defer close(done)
				got, err = Read(context.Background(), tc.path, 1024)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("Read(%s) did not return (blocked)", tc.path)
			}
			if tc.class == nil {
				if err != nil || string(got) != tc.want {
					t.Fatalf("Read = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.class) {
				t.Fatalf("Read error = %v, want class %v", err, tc.class)
			}
			if !strings.Contains(err.Error(), tc.msg) || (tc.class != os.ErrNotExist && !strings.Contains(err.Error(), tc.path)) {
				t.Fatalf("error %q does not name %q and the file", err, tc.msg)
			}
		})
	}
}

func TestReadStopsWhenCancelled(t *testing.T) {
	p := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(p, bytes.Repeat([]byte("a\n"), 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Read(ctx, p, 4<<20); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Check(p, 2); err != nil {
		t.Fatalf("Check(small file) = %v", err)
	}
	if err := Check(p, 1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Check over the cap = %v, want ErrTooLarge", err)
	}
	if err := Check("/dev/null", 10); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("Check(/dev/null) = %v, want ErrNotRegular", err)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{MaxManifest: "16 MiB", 1024: "1 KiB", 1000: "1000 bytes", MaxSmall: "1 MiB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
