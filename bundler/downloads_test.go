package bundler

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// A follower passes on what the download has written, waits for more, and
// ends only when the download has finished and been verified; when the
// download starts over or fails, it says so instead.
func TestFollower(t *testing.T) {
	d := digest.FromString("blob")
	setup := func(t *testing.T) (*downloads, *download, *os.File) {
		t.Helper()
		f, err := os.Create(filepath.Join(t.TempDir(), "partial"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		x := newDownload()
		dl := &downloads{m: map[digest.Digest]*download{d: x}, starts: make(chan struct{})}
		return dl, x, f
	}
	read := func(t *testing.T, r io.Reader, n int) (string, error) {
		t.Helper()
		got := make(chan struct {
			s   string
			err error
		}, 1)
		go func() {
			b := make([]byte, n)
			k, err := r.Read(b)
			got <- struct {
				s   string
				err error
			}{string(b[:k]), err}
		}()
		select {
		case g := <-got:
			return g.s, g.err
		case <-time.After(5 * time.Second):
			t.Fatal("Read blocked")
		}
		return "", nil
	}

	t.Run("streams then ends when verified", func(t *testing.T) {
		dl, x, f := setup(t)
		if fr := dl.follow(context.Background(), d, 10); fr != nil {
			t.Fatal("followed a download whose file is not known yet")
		}
		f.WriteString("hello")
		x.started(f.Name(), 5) // resumed: 5 bytes there
		fr := dl.follow(context.Background(), d, 10)
		if fr == nil {
			t.Fatal("no follower")
		}
		defer fr.Close()
		if s, err := read(t, fr, 100); s != "hello" || err != nil {
			t.Fatalf("first read %q, %v", s, err)
		}
		// Nothing more yet: Read waits, and returns once bytes arrive.
		done := make(chan string, 1)
		go func() { b := make([]byte, 100); n, _ := fr.Read(b); done <- string(b[:n]) }()
		select {
		case s := <-done:
			t.Fatalf("Read returned %q before any byte arrived", s)
		case <-time.After(50 * time.Millisecond):
		}
		f.WriteString("world")
		x.received(5)
		if s := <-done; s != "world" {
			t.Fatalf("second read %q", s)
		}
		// All bytes in, not yet verified: still waiting.
		go func() { _, err := fr.Read(make([]byte, 1)); done <- errString(err) }()
		select {
		case s := <-done:
			t.Fatalf("Read ended (%s) before the download was verified", s)
		case <-time.After(50 * time.Millisecond):
		}
		x.mu.Lock()
		close(x.done)
		x.notify()
		x.mu.Unlock()
		if s := <-done; s != io.EOF.Error() {
			t.Fatalf("after verification: %s, want EOF", s)
		}
	})

	t.Run("restart", func(t *testing.T) {
		dl, x, f := setup(t)
		f.WriteString("bad")
		x.started(f.Name(), 3)
		fr := dl.follow(context.Background(), d, 10)
		if s, err := read(t, fr, 100); s != "bad" || err != nil {
			t.Fatalf("read %q, %v", s, err)
		}
		x.started(f.Name(), 0) // the partial was proved wrong and begun anew
		if _, err := read(t, fr, 100); !errors.Is(err, errRestart) {
			t.Fatalf("after a restart: %v, want errRestart", err)
		}
	})

	t.Run("failure", func(t *testing.T) {
		dl, x, f := setup(t)
		x.started(f.Name(), 0)
		fr := dl.follow(context.Background(), d, 10)
		boom := errors.New("registry gone")
		x.mu.Lock()
		x.err = boom
		close(x.done)
		x.notify()
		x.mu.Unlock()
		if _, err := read(t, fr, 100); !errors.Is(err, boom) {
			t.Fatalf("after a failed download: %v", err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		dl, x, f := setup(t)
		x.started(f.Name(), 0)
		ctx, cancel := context.WithCancel(context.Background())
		fr := dl.follow(ctx, d, 10)
		cancel()
		if _, err := read(t, fr, 100); !errors.Is(err, context.Canceled) {
			t.Fatalf("after cancel: %v", err)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
