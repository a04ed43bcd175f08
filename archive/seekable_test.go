package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// OpenSeekable reads a .tar in place and a compressed archive from a
// copy, temporary (push) or kept by the archive's sha256 and found again
// (serve); the offsets it gives read each blob's bytes from its File.
func TestOpenSeekable(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	archives := map[Compression]string{}
	for _, c := range []Compression{None, Gzip, Zstd} {
		p := filepath.Join(dir, "a"+map[Compression]string{None: ".tar", Gzip: ".tar.gz", Zstd: ".tar.zst"}[c])
		if err := os.WriteFile(p, writeArchive(t, w.images, w.blobs, Options{Compression: c}), 0o600); err != nil {
			t.Fatal(err)
		}
		archives[c] = p
	}
	readsBlobs := func(t *testing.T, s *Seekable) {
		t.Helper()
		if len(s.Contents.Blobs) == 0 {
			t.Fatal("no blobs")
		}
		for d, b := range s.Contents.Blobs {
			fi := s.Contents.Files[b.Path]
			got := make([]byte, fi.Size)
			if _, err := s.File.ReadAt(got, fi.Offset); err != nil {
				t.Fatal(err)
			}
			if string(got) != string(w.blobs.data[d]) {
				t.Fatalf("bytes at the offset of %s are not the blob", d)
			}
		}
	}
	ctx := context.Background()

	t.Run("tar in place", func(t *testing.T) {
		s, err := OpenSeekable(ctx, archives[None], SeekableOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.Copy != "" || s.Compression != None || s.Info.Size() == 0 {
			t.Fatalf("copy %q, compression %v, info %v", s.Copy, s.Compression, s.Info)
		}
		readsBlobs(t, s)
	})
	t.Run("compressed without a directory", func(t *testing.T) {
		_, err := OpenSeekable(ctx, archives[Zstd], SeekableOptions{})
		if !errors.Is(err, ErrCompressed) {
			t.Fatalf("err = %v, want ErrCompressed", err)
		}
	})
	for _, c := range []Compression{Gzip, Zstd} {
		t.Run("temporary copy of "+c.String(), func(t *testing.T) {
			tmp := t.TempDir()
			s, err := OpenSeekable(ctx, archives[c], SeekableOptions{Dir: tmp})
			if err != nil {
				t.Fatal(err)
			}
			if s.Compression != c || s.Copy == "" {
				t.Fatalf("compression %v, copy %q", s.Compression, s.Copy)
			}
			readsBlobs(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Fatalf("Close left %v", left)
			}
		})
	}
	t.Run("kept copy", func(t *testing.T) {
		keep := t.TempDir()
		s, err := OpenSeekable(ctx, archives[Gzip], SeekableOptions{Dir: keep, Keep: true})
		if err != nil {
			t.Fatal(err)
		}
		readsBlobs(t, s)
		s.Close()
		first, err := os.Stat(s.Copy)
		if err != nil {
			t.Fatalf("the kept copy is gone: %v", err)
		}
		again, err := OpenSeekable(ctx, archives[Gzip], SeekableOptions{Dir: keep, Keep: true})
		if err != nil {
			t.Fatal(err)
		}
		again.Close()
		if second, _ := os.Stat(again.Copy); again.Copy != s.Copy || !os.SameFile(first, second) {
			t.Fatal("the second open made a new copy instead of finding the first")
		}
		// A copy damaged since: refused and removed, made anew next time.
		f, err := os.OpenFile(s.Copy, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("XXXXXXXX"), 1536); err != nil { // inside the first blob
			t.Fatal(err)
		}
		f.Close()
		if _, err := OpenSeekable(ctx, archives[Gzip], SeekableOptions{Dir: keep, Keep: true}); err == nil {
			t.Fatal("a damaged copy was read")
		}
		if _, err := os.Stat(s.Copy); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the damaged copy is still there: %v", err)
		}
		s3, err := OpenSeekable(ctx, archives[Gzip], SeekableOptions{Dir: keep, Keep: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s3.Close()
		readsBlobs(t, s3)
	})
}
