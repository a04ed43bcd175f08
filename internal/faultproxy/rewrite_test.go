package faultproxy

import (
	"net/http"
	"testing"
)

func TestRewriteAndHopHeaders(t *testing.T) {
	p := &Proxy{Host: "127.0.0.1:1111", Upstream: "127.0.0.1:2222"}
	resp := &http.Response{Header: http.Header{
		"Location":         {"http://127.0.0.1:2222/v2/r/blobs/uploads/u?_state=x"},
		"Www-Authenticate": {`Bearer realm="https://127.0.0.1:2222/token",service="127.0.0.1:2222"`},
		"Connection":       {"close, X-Private"},
		"X-Private":        {"1"},
		"Keep-Alive":       {"timeout=5"},
		"Content-Length":   {"42"},
	}}
	h := p.header(resp)
	for name, want := range map[string]string{
		"Location":         "http://127.0.0.1:1111/v2/r/blobs/uploads/u?_state=x",
		"Www-Authenticate": `Bearer realm="http://127.0.0.1:1111/token",service="127.0.0.1:2222"`,
		"Connection":       "",
		"X-Private":        "",
		"Keep-Alive":       "",
		"Content-Length":   "42",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if resp.Header.Get("Connection") == "" {
		t.Error("header modified the upstream response's headers")
	}
}

func TestPathKind(t *testing.T) {
	for path, want := range map[string]string{
		"/v2/":                                 KindOther,
		"/v2/a/b/manifests/v1":                 KindManifests,
		"/v2/a/blobs/sha256:00":                KindBlobs,
		"/v2/a/blobs/uploads/":                 KindUploads,
		"/v2/a/blobs/uploads/123":              KindUploads,
		"/v2/a/tags/list":                      KindOther,
		"/v2/manifests/blobs/manifests/latest": KindManifests,
	} {
		if got := PathKind(path); got != want {
			t.Errorf("PathKind(%q) = %q, want %q", path, got, want)
		}
	}
}
