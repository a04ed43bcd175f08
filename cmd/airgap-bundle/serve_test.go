package main

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
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
	dir := emptyArchiveDir(t)
	url, cancel, done := startServe(t, dir)
	defer cancel()
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

	// A damaged .tar.gz fails at start, naming the archive.
	gz := filepath.Join(t.TempDir(), "x.tar.gz")
	os.WriteFile(gz, []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 3, 0}, 0o644)
	if _, stderr, code := runSplit(t, "", "serve", "--listen", "127.0.0.1:0", "--unpack-dir", t.TempDir(), gz); code == 0 || !strings.Contains(stderr, gz) {
		t.Errorf("serve of a damaged .tar.gz: code %d, %s", code, stderr)
	}
	if _, _, code := runSplit(t, "", "serve", "--tls-cert", "x.pem", dir); code != exitUsage {
		t.Errorf("--tls-cert alone: code %d", code)
	}
}

// emptyArchiveDir is a directory with one archive of no images.
func emptyArchiveDir(t *testing.T) string {
	t.Helper()
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

	return dir
}

// startServe runs "serve" on a free port and returns its URL, the
// cancel that stops it (Ctrl-C) and where its error arrives.
func startServe(t *testing.T, args ...string) (string, context.CancelFunc, chan error) {
	t.Helper()
	url, _, cancel, done := startServeOutput(t, args...)
	return url, cancel, done
}

// startServeOutput is startServe, and what serve printed before its
// address (the archives and repositories it serves).
func startServeOutput(t *testing.T, args ...string) (string, string, context.CancelFunc, chan error) {
	t.Helper()
	pr, pw := io.Pipe()
	c := newRootCmd()
	c.SetArgs(append([]string{"serve", "--listen", "127.0.0.1:0"}, args...))
	c.SetErr(pw)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.ExecuteContext(ctx); pw.Close() }()
	addrRE := regexp.MustCompile(`on (https?://\S+)`)
	var url string
	var printed strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
			break
		}
		printed.WriteString(sc.Text() + "\n")
	}
	go io.Copy(io.Discard, pr)
	if url == "" {
		cancel()
		t.Fatalf("no address printed: %v\n%s", <-done, printed.String())
	}
	return url, printed.String(), cancel, done
}

// TestServeTLS: with --tls-cert and --tls-key, serve answers HTTPS.
func TestServeTLS(t *testing.T) {
	dir := emptyArchiveDir(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(t.TempDir(), "cert.pem"), filepath.Join(t.TempDir(), "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)

	url, cancel, done := startServe(t, "--tls-cert", certPath, "--tls-key", keyPath, dir)
	defer cancel()
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("url %s", url)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(url + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Errorf("/v2/ over TLS: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve after cancel: %v", err)
	}
}

// TestServeTLSBadKeyPair: a --tls-cert or --tls-key that is missing or no
// PEM key pair fails before serve reads the archives or says it serves,
// naming the files.
func TestServeTLSBadKeyPair(t *testing.T) {
	dir := emptyArchiveDir(t)
	tmp := t.TempDir()
	garbage := writeFile(t, tmp, "garbage.pem", "not a certificate\n")
	for _, c := range [][2]string{
		{filepath.Join(tmp, "missing.pem"), filepath.Join(tmp, "missing.key")},
		{garbage, garbage},
	} {
		out, stderr, code := runSplit(t, "", "serve", "--listen", "127.0.0.1:0", "--tls-cert", c[0], "--tls-key", c[1], dir)
		if code != exitUsage || strings.Contains(stderr, "serving") || strings.Contains(stderr, "empty.tar") || !strings.Contains(stderr, c[0]) {
			t.Errorf("--tls-cert %s: exit %d\n%s%s", c[0], code, out, stderr)
		}
	}
}
