package serve

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// lockedBuffer is a log destination the server's goroutines share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// An archive changed on disk after serve read it (bytes rewritten in
// place, truncated) no longer serves its blobs and manifests: 503
// UNAVAILABLE with a registry error, one log line naming it; not other
// bytes under the old digest, nor a Content-Length the file cannot fill. A
// blob another, unchanged archive holds is still served from that one.
func TestServeArchiveChangedOnDisk(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(t *testing.T, path string, layerAt int)
	}{
		{"modified in place", func(t *testing.T, path string, at int) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte("tampered"), int64(at)); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, path string, at int) {
			if err := os.Truncate(path, int64(at)+10); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			f := writeFixture(t, dir)
			raw, _ := os.ReadFile(f.path)
			// An mtime well before the change, whatever the clock's
			// granularity.
			past := time.Now().Add(-time.Hour)
			if err := os.Chtimes(f.path, past, past); err != nil {
				t.Fatal(err)
			}
			layer := f.amd64.Layers[0]
			at := bytes.Index(raw, f.blobs[layer.Digest])
			if at < 0 {
				t.Fatal("layer not found in the archive")
			}
			logs := &lockedBuffer{}
			r, _, err := Open(context.Background(), []string{dir}, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(r)
			defer func() { srv.Close(); r.Close() }()
			base := srv.URL + "/v2/docker.io/library/busybox"
			if resp, body := do(t, "GET", base+"/blobs/"+layer.Digest.String()); resp.StatusCode != 200 || digest.FromBytes(body) != layer.Digest {
				t.Fatalf("before the change: %d", resp.StatusCode)
			}

			c.change(t, f.path, at)
			for _, m := range []string{"GET", "HEAD"} {
				resp, body := do(t, m, base+"/blobs/"+layer.Digest.String())
				if resp.StatusCode != 503 || resp.Header.Get("Docker-Content-Digest") != "" || (m == "GET" && !strings.Contains(string(body), `"UNAVAILABLE"`)) {
					t.Errorf("%s the layer after the change: %d, Content-Length %d, %.80q", m, resp.StatusCode, resp.ContentLength, body)
				}
			}
			expectError(t, "GET", base+"/blobs/"+layer.Digest.String(), 503, "UNAVAILABLE")
			expectError(t, "GET", base+"/manifests/1.36", 503, "UNAVAILABLE")
			expectError(t, "GET", base+"/manifests/"+f.amd64.Digest.String(), 503, "UNAVAILABLE")
			if n := strings.Count(logs.String(), "archive changed on disk"); n != 1 || !strings.Contains(logs.String(), f.path) {
				t.Errorf("log: %d lines about the change, want 1 naming %s:\n%s", n, f.path, logs)
			}
		})
	}

	t.Run("held by another archive", func(t *testing.T) {
		dir := t.TempDir()
		f := writeFixture(t, dir)
		raw, _ := os.ReadFile(f.path)
		a := filepath.Join(dir, "a.tar")
		if err := os.Rename(f.path, a); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "b.tar"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		past := time.Now().Add(-time.Hour)
		os.Chtimes(a, past, past)
		r, _, err := Open(context.Background(), []string{dir}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(r)
		defer func() { srv.Close(); r.Close() }()
		layer := f.amd64.Layers[0]
		if err := os.Truncate(a, 100); err != nil {
			t.Fatal(err)
		}
		resp, body := do(t, "GET", srv.URL+"/v2/docker.io/library/busybox/blobs/"+layer.Digest.String())
		if resp.StatusCode != 200 || digest.FromBytes(body) != layer.Digest {
			t.Errorf("layer held by b.tar too: %d", resp.StatusCode)
		}
	})
}
