package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/internal/faultproxy"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// TestPushDigestNotKept (issue 15, defect 9): a registry that answers a
// manifest PUT with another Docker-Content-Digest fails the push, naming the
// image and both digests, instead of reporting "digest kept".
func TestPushDigestNotKept(t *testing.T) {
	_, dist, std := builtBundle(t)
	tags := filepath.Join(dist, "tags.tar.zst")
	reg := testregistry.Start(t, testregistry.Options{})
	px := faultproxy.Start(t, reg.Host)
	base := []string{"--insecure", "--cache-dir", t.TempDir()}

	const other = "sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
	lie := px.Add(faultproxy.Rule{Method: "PUT", Path: "/manifests/", Fault: faultproxy.EditHeader("Docker-Content-Digest", func(string) string { return other })})
	mapping := filepath.Join(t.TempDir(), "mapping.json")
	out, stderr, code := runSplit(t, "", append([]string{"push", "--to", px.Host + "/lied", "--mapping", mapping, tags}, base...)...)
	pushed := ""
	for _, d := range []string{std.SingleOCI.Digest, std.TwoTags.Digest} {
		if strings.Contains(stderr, d) {
			pushed = d
		}
	}
	if code != exitFailure || lie.Fired() == 0 || !strings.Contains(stderr, other) || pushed == "" ||
		!strings.Contains(stderr, "registry.test/fixtures/") || !strings.Contains(stderr, px.Host+"/lied/fixtures/") || strings.Contains(out, "digest kept") {
		t.Fatalf("a registry answering another digest: exit %d (PUTs edited: %d)\n%s%s", code, lie.Fired(), out, stderr)
	}
	if _, err := os.Stat(mapping); err == nil {
		t.Error("the mapping was written although the registry did not keep the digest")
	}

	// A registry that sends no Docker-Content-Digest: the manifest is
	// looked up after the PUT instead.
	px.ClearRules()
	silent := px.Add(faultproxy.Rule{Method: "PUT", Path: "/manifests/", Fault: faultproxy.EditHeader("Docker-Content-Digest", func(string) string { return "" })})
	px.ResetCounters()
	if out, stderr, code := runSplit(t, "", append([]string{"push", "--to", px.Host + "/silent", tags}, base...)...); code != 0 || silent.Fired() == 0 || !strings.Contains(out, "digest kept") {
		t.Fatalf("a registry without Docker-Content-Digest: exit %d (PUTs edited: %d)\n%s%s", code, silent.Fired(), out, stderr)
	}
	if s := px.Stats(); s.Count("HEAD", faultproxy.KindManifests) < 2*silent.Fired() {
		t.Errorf("the pushed manifests were not looked up after their PUT: %s", s)
	}

}

// TestPushCountsUploadsElsewhere (issue 15, defect 9): blobs uploaded
// through a Location on another host (another port: a storage front), in
// URLs that do not say "blobs/uploads", count as uploaded, with their bytes.
func TestPushCountsUploadsElsewhere(t *testing.T) {
	_, dist, _ := builtBundle(t)
	reg := testregistry.Start(t, testregistry.Options{})
	px := faultproxy.Start(t, reg.Host)
	relay := startUploadRelay(t, reg.Host)
	moved := px.Add(faultproxy.Rule{Method: "POST", Path: "/blobs/uploads/", Fault: faultproxy.EditHeader("Location", relay.opaque)})
	out, stderr, code := runSplit(t, "", "--json", "push", "--insecure", "--cache-dir", t.TempDir(), "--to", px.Host, filepath.Join(dist, "tags.tar.zst"))
	if code != 0 {
		t.Fatalf("push with uploads on another host: exit %d\n%s%s\n%s", code, out, stderr, px.LogString())
	}
	var s pushStats
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if p := px.Stats(); moved.Fired() == 0 || relay.completed.Load() == 0 || p.Count("PATCH", faultproxy.KindUploads) != 0 || p.Count("PUT", faultproxy.KindUploads) != 0 {
		t.Fatalf("the uploads did not go to the other host: %d moved, %d completed there; front: %s", moved.Fired(), relay.completed.Load(), p)
	}
	if int64(s.Stats.BlobsUploaded) != relay.completed.Load() || s.Stats.BytesUploaded != relay.bytes.Load() {
		t.Errorf("reported %d blobs uploaded (%d bytes); the other host completed %d uploads of %d bytes",
			s.Stats.BlobsUploaded, s.Stats.BytesUploaded, relay.completed.Load(), relay.bytes.Load())
	}
}

// uploadRelay is a second front of a registry, on a port of its own, that
// takes upload URLs only in an opaque form, /upload/<base64url(path)>?query,
// as a storage service a registry hands its uploads to might: nothing in
// its URLs says "blobs/uploads". It counts the request body bytes it
// forwards and the uploads the registry completed (PUT 201).
type uploadRelay struct {
	host, upstream   string
	rt               *http.Transport
	bytes, completed atomic.Int64
}

func startUploadRelay(t *testing.T, upstream string) *uploadRelay {
	t.Helper()
	r := &uploadRelay{upstream: upstream, rt: &http.Transport{Proxy: nil, DisableCompression: true}}
	srv := httptest.NewServer(r)
	t.Cleanup(func() {
		srv.Close()
		r.rt.CloseIdleConnections()
	})
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// opaque turns an upload URL of the registry (or of a proxy in front of
// it) into the relay's form.
func (r *uploadRelay) opaque(loc string) string {
	u, err := url.Parse(loc)
	if err != nil || !strings.Contains(u.Path, "/blobs/uploads/") {
		return loc
	}
	return "http://" + r.host + "/upload/" + base64.RawURLEncoding.EncodeToString([]byte(u.Path)) + "?" + u.RawQuery
}

func (r *uploadRelay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	enc, ok := strings.CutPrefix(req.URL.Path, "/upload/")
	path, err := base64.RawURLEncoding.DecodeString(enc)
	if !ok || err != nil {
		http.Error(w, "not an upload URL of this relay", http.StatusNotFound)
		return
	}
	var body io.Reader
	if req.ContentLength != 0 {
		body = &relayCount{r: req.Body, n: &r.bytes}
	}
	out, err := http.NewRequestWithContext(req.Context(), req.Method, "http://"+r.upstream+string(path)+"?"+req.URL.RawQuery, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out.ContentLength = req.ContentLength
	for k, vs := range req.Header {
		out.Header[k] = vs
	}
	resp, err := r.rt.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		w.Header().Set("Location", r.opaque(loc))
	}
	if req.Method == http.MethodPut && resp.StatusCode == http.StatusCreated {
		r.completed.Add(1)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

type relayCount struct {
	r io.Reader
	n *atomic.Int64
}

func (c *relayCount) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
