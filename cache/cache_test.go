package cache

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestPutAndOpen(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	content := "hello blob"
	d := digest.FromString(content)
	cases := []struct {
		name string
		dg   digest.Digest
		size int64
		body string
		ok   bool
	}{
		{"wrong content", d, int64(len(content)), "hello blub", false},
		{"short", d, int64(len(content)), "hello", false},
		{"long", d, int64(len(content)), content + "!", false},
		{"wrong size claimed", d, 3, content, false},
		{"good", d, int64(len(content)), content, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Put(ctx, tc.dg, tc.size, strings.NewReader(tc.body))
			if tc.ok != (err == nil) {
				t.Fatalf("Put: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrDigest) {
				t.Errorf("error is not ErrDigest: %v", err)
			}
			if c.Has(d, int64(len(content))) != tc.ok {
				t.Errorf("Has after %s = %v", tc.name, !tc.ok)
			}
		})
	}
	tmp, _ := os.ReadDir(filepath.Join(c.Dir(), "tmp"))
	if len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	rc, err := c.Open(d, int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != content {
		t.Fatalf("read back %q, %v", b, err)
	}

	// A blob corrupted on disk is caught on read and dropped.
	p, _ := c.path(d)
	if err := os.WriteFile(p, []byte("hello blOb"), 0o644); err != nil {
		t.Fatal(err)
	}
	rc, _ = c.Open(d, int64(len(content)))
	_, err = io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, ErrDigest) {
		t.Fatalf("corrupt cache read: %v", err)
	}
	if c.Has(d, -1) {
		t.Error("corrupt entry kept")
	}
}

func TestRejectsBadDigests(t *testing.T) {
	c, _ := Open(t.TempDir())
	for _, d := range []digest.Digest{"sha256:../../etc/passwd", "md5:abc", ""} {
		if err := c.Put(context.Background(), d, 1, strings.NewReader("x")); err == nil {
			t.Errorf("Put(%q) accepted", d)
		}
	}
}
