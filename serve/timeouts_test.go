//go:build unix

package serve

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/image"
)

// bigBlobArchive writes an archive of one image whose layer is size bytes
// (more than the kernel buffers of a loopback connection hold) and returns
// the layer's digest.
func bigBlobArchive(t *testing.T, dir string, size int) string {
	t.Helper()
	blobs := memBlobs{}
	layer := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(layer)
	ld := blobs.add(layer)
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + ld.String() + `"]}}`)
	cd := blobs.add(cfg)
	mraw := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`, cd, len(cfg), ld, len(layer)))
	blobs.add(mraw)
	m, err := image.ParseManifest(mraw, image.OCIManifest)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	imgs := []archive.Image{{Names: []string{"docker.io/library/big:1"}, Top: m.Descriptor, Manifests: []image.Manifest{m}}}
	if err := archive.Write(context.Background(), &buf, imgs, blobs, archive.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.tar"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return ld.String()
}

// serveWith runs r.Server() on a free port of 127.0.0.1 until the test
// ends.
func serveWith(t *testing.T, r *Registry) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := r.Server()
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done; r.Close() })
	return ln.Addr().String()
}

// closedWithin reads from c until the server closes it, or fails after
// limit.
func closedWithin(t *testing.T, c net.Conn, br *bufio.Reader, limit time.Duration) (time.Duration, int64) {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(limit))
	n, err := io.Copy(io.Discard, br)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %s (read %d bytes)", limit, n)
	}
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after %d bytes: %v", n, err)
	}
	return time.Since(start), n
}

// TestServeTimeouts: an idle keep-alive connection is closed after the
// idle timeout, a request whose headers do not arrive after the header
// timeout, and a response whose client stops reading after the write stall
// timeout, while a client that reads slowly but steadily gets all of a
// blob that takes longer than that.
func TestServeTimeouts(t *testing.T) {
	dir := t.TempDir()
	const size = 24 << 20
	layer := bigBlobArchive(t, dir, size)
	const timeout = 500 * time.Millisecond
	r, _, err := Open(context.Background(), []string{dir}, Options{IdleTimeout: timeout, ReadHeaderTimeout: timeout, WriteStallTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveWith(t, r)

	t.Run("idle", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		io.WriteString(c, "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("/v2/: %d, close %v", resp.StatusCode, resp.Close)
		}
		if took, _ := closedWithin(t, c, br, 10*time.Second); took < timeout/2 {
			t.Errorf("closed after %s, before the idle timeout %s", took, timeout)
		}
	})

	t.Run("headers", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /v2/ HTTP/1.1\r\nHost: x\r\n")
		closedWithin(t, c, bufio.NewReader(c), 10*time.Second)
	})

	get := func(t *testing.T) (net.Conn, *bufio.Reader, *http.Response) {
		t.Helper()
		// A small receive buffer, so that the kernel takes in only a
		// little of what the client does not read; set before connecting,
		// as shrinking it on an open connection stalls TCP itself.
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
			return cmp.Or(err, serr)
		}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		br := bufio.NewReaderSize(c, 4<<10)
		io.WriteString(c, "GET /v2/library/big/blobs/"+layer+" HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 || resp.ContentLength != size {
			t.Fatalf("GET the layer: %v, %v", resp, err)
		}
		return c, br, resp
	}

	t.Run("stalled reader", func(t *testing.T) {
		c, br, _ := get(t)
		time.Sleep(6 * timeout)
		if _, n := closedWithin(t, c, br, 10*time.Second); n >= size {
			t.Errorf("a client that stopped reading for %s got all %d bytes", 6*timeout, n)
		}
	})

	t.Run("slow reader", func(t *testing.T) {
		c, _, resp := get(t)
		c.SetReadDeadline(time.Now().Add(time.Minute))
		// 24 MiB in pieces, pausing below the stall timeout between
		// them: longer in all than the timeout, never stalled that long.
		start := time.Now()
		var n int64
		buf := make([]byte, 1<<20)
		for {
			m, err := io.ReadFull(resp.Body, buf)
			n += int64(m)
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				t.Fatalf("after %d bytes: %v", n, err)
			}
			if time.Since(start) < 3*timeout {
				time.Sleep(timeout / 5)
			}
		}
		if n != size || time.Since(start) < timeout {
			t.Errorf("slow reader: %d bytes of %d in %s", n, size, time.Since(start))
		}
	})
}
