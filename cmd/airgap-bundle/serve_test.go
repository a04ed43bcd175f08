package main

import (
	"archive/tar"
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestServeCommand: serve listens, answers /v2/, and returns cleanly when
// its context ends (Ctrl-C); a compressed archive and half the TLS flags
// are refused.
func TestServeCommand(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "empty.tar"))
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for name, body := range map[string]string{"oci-layout": `{"imageLayoutVersion":"1.0.0"}`, "index.json": `{"schemaVersion":2,"manifests":[]}`} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		io.WriteString(tw, body)
	}
	tw.Close()
	f.Close()

	pr, pw := io.Pipe()
	c := newRootCmd()
	c.SetArgs([]string{"serve", "--listen", "127.0.0.1:0", dir})
	c.SetErr(pw)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.ExecuteContext(ctx); pw.Close() }()
	addrRE := regexp.MustCompile(`on (http://\S+)`)
	var url string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if url == "" {
		t.Fatalf("no address printed: %v", <-done)
	}
	resp, err := http.Get(url + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/v2/: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}

	gz := filepath.Join(dir, "x.tar.gz")
	os.WriteFile(gz, []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0o644)
	if _, stderr, code := runSplit(t, "", "serve", "--listen", "127.0.0.1:0", gz); code == 0 || !strings.Contains(stderr, "decompress") {
		t.Errorf("serve .tar.gz: code %d, %s", code, stderr)
	}
	if _, _, code := runSplit(t, "", "serve", "--tls-cert", "x.pem", dir); code != exitUsage {
		t.Errorf("--tls-cert alone: code %d", code)
	}
}
