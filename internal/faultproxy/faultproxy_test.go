package faultproxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airgap-bundle/airgap-bundle/internal/faultproxy"
	"github.com/airgap-bundle/airgap-bundle/internal/fixtures"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	blobSize  = 1 << 20
	blobRepo  = "faultproxy/blob"
	imageRepo = "faultproxy/img"
	accept    = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
)

// world is a registry holding one 1 MiB blob and one image, pushed through a
// proxy (so uploads and their Location headers went through it too).
type world struct {
	reg        *testregistry.Registry
	blob       []byte
	blobPath   string // /v2/faultproxy/blob/blobs/sha256:...
	manifest   []byte
	manifestV1 string // /v2/faultproxy/img/manifests/v1
}

func newWorld(t *testing.T) *world {
	t.Helper()
	reg := testregistry.Start(t, testregistry.Options{})
	px := faultproxy.Start(t, reg.Host)
	w := &world{reg: reg, blob: make([]byte, blobSize)}
	r := rand.New(rand.NewChaCha8([32]byte{'f', 'a', 'u', 'l', 't'}))
	for i := range w.blob {
		w.blob[i] = byte(r.Uint32())
	}
	sum := sha256.Sum256(w.blob)
	w.blobPath = "/v2/" + blobRepo + "/blobs/sha256:" + hex.EncodeToString(sum[:])

	ctx := context.Background()
	repo, err := name.NewRepository(px.Host + "/" + blobRepo)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteLayer(repo, static.NewLayer(w.blob, types.OCILayer),
		remote.WithContext(ctx), remote.WithTransport(newTransport())); err != nil {
		t.Fatalf("pushing blob through the proxy: %v\n%s", err, px.LogString())
	}
	img, err := fixtures.Image("faultproxy", fixtures.LinuxAMD64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fixtures.Push(ctx, px.Host+"/"+imageRepo+":v1", img, newTransport(), "", ""); err != nil {
		t.Fatalf("pushing image through the proxy: %v\n%s", err, px.LogString())
	}
	if w.manifest, err = img.RawManifest(); err != nil {
		t.Fatal(err)
	}
	w.manifestV1 = "/v2/" + imageRepo + "/manifests/v1"

	// The uploads' PUT only reaches the proxy if the upstream's absolute
	// upload Location was rewritten to point at it.
	if s := px.Stats(); s.Count("PUT", faultproxy.KindUploads) < 2 || s.Count("PUT", faultproxy.KindManifests) < 1 {
		t.Fatalf("pushes did not go through the proxy: %s\n%s", s, px.LogString())
	}
	return w
}

func newTransport() *http.Transport {
	return &http.Transport{Proxy: nil, DisableCompression: true}
}

// result is what a plain net/http client saw.
type result struct {
	status  int
	header  http.Header
	body    []byte
	err     error // from Do or from reading the body
	elapsed time.Duration
}

func fetch(t *testing.T, px *faultproxy.Proxy, method, path, rng string, timeout time.Duration) result {
	t.Helper()
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	c := &http.Client{Transport: newTransport(), Timeout: timeout}
	defer c.CloseIdleConnections()
	req, err := http.NewRequest(method, px.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return result{err: err, elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: body, err: err, elapsed: time.Since(start)}
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

func TestFaults(t *testing.T) {
	w := newWorld(t)
	blobs := "/blobs/sha256:"

	for _, tc := range []struct {
		name     string
		rules    []faultproxy.Rule
		method   string // default GET
		path     string // default the blob
		rng      string
		timeout  time.Duration
		upstream int // requests the proxy should forward; default 1
		check    func(t *testing.T, r result, s faultproxy.Stats)
	}{
		{
			name: "passthrough",
			check: func(t *testing.T, r result, s faultproxy.Stats) {
				if r.err != nil || r.status != 200 || !bytes.Equal(r.body, w.blob) {
					t.Fatalf("got %d, %d bytes, err %v; want 200 and the blob", r.status, len(r.body), r.err)
				}
				if got := s.Count("GET", faultproxy.KindBlobs); got != 1 {
					t.Errorf("GET blobs = %d, want 1", got)
				}
				if got := s.BytesSent[w.blobPath]; got != blobSize {
					t.Errorf("bytes sent = %d, want %d", got, blobSize)
				}
				if s.Faults != 0 || s.RangeRequests != 0 {
					t.Errorf("faults %d, ranges %d, want none", s.Faults, s.RangeRequests)
				}
			},
		},
		{
			name: "manifest passthrough",
			path: w.manifestV1,
			check: func(t *testing.T, r result, s faultproxy.Stats) {
				if r.err != nil || r.status != 200 || !bytes.Equal(r.body, w.manifest) {
					t.Fatalf("got %d, err %v, body %q; want 200 and the manifest", r.status, r.err, r.body)
				}
				if got := s.Count("GET", faultproxy.KindManifests); got != 1 {
					t.Errorf("GET manifests = %d, want 1", got)
				}
			},
		},
		{
			name:     "503 with Retry-After, upstream not contacted",
			rules:    []faultproxy.Rule{{Method: "GET", Path: blobs, Fault: faultproxy.StatusRetryAfter(503, 1500*time.Millisecond)}},
			upstream: -1,
			check: func(t *testing.T, r result, s faultproxy.Stats) {
				if r.err != nil || r.status != 503 || r.header.Get("Retry-After") != "2" {
					t.Fatalf("got %d Retry-After %q err %v; want 503 Retry-After 2", r.status, r.header.Get("Retry-After"), r.err)
				}
				if !bytes.Contains(r.body, []byte(`"UNAVAILABLE"`)) {
					t.Errorf("body %q lacks the registry error code", r.body)
				}
			},
		},
		{
			name: "Range forwarded, 206 returned",
			rng:  "bytes=100-199",
			check: func(t *testing.T, r result, s faultproxy.Stats) {
				if r.err != nil || r.status != 206 || !bytes.Equal(r.body, w.blob[100:200]) {
					t.Fatalf("got %d, %d bytes, err %v; want 206 and blob[100:200]", r.status, len(r.body), r.err)
				}
				if cr := r.header.Get("Content-Range"); cr != fmt.Sprintf("bytes 100-199/%d", blobSize) {
					t.Errorf("Content-Range %q", cr)
				}
				if s.RangeRequests != 1 || len(s.Ranges) != 1 || s.Ranges[0] != "bytes=100-199" {
					t.Errorf("ranges %d %q, want 1 [bytes=100-199]", s.RangeRequests, s.Ranges)
				}
				if got := s.BytesSent[w.blobPath]; got != 100 {
					t.Errorf("bytes sent = %d, want 100", got)
				}
			},
		},
		{
			name:  "reset mid-body gives ECONNRESET",
			rules: []faultproxy.Rule{{Path: blobs, Fault: faultproxy.ResetAfter(100_000)}},
			check: func(t *testing.T, r result, s faultproxy.Stats) {
				if !errors.Is(r.err, syscall.ECONNRESET) {
					t.Fatalf("err = %v, want one wrapping ECONNRESET", r.err)
				}
				if len(r.body) > 100_000 || !bytes.Equal(r.body, w.blob[:len(r.body)]) {
					t.Errorf("read %d bytes, want at most 100000 of the blob", len(r.body))
				}
			},
		},
		{
			name:  "cut body gives unexpected EOF",
			rules: []faultproxy.Rule{{Path: blobs, Fault: faultproxy.CutAfter(100_000)}},
			check: func(t *testing.T, r result, s faultproxy.Stats) {
				if !errors.Is(r.err, io.ErrUnexpectedEOF) {
					t.Fatalf("err = %v, want io.ErrUnexpectedEOF", r.err)
				}
				if r.header.Get("Content-Length") != strconv.Itoa(blobSize) {
					t.Errorf("Content-Length %q, want the full %d", r.header.Get("Content-Length"), blobSize)
				}
				if !bytes.Equal(r.body, w.blob[:100_000]) {
					t.Errorf("read %d bytes, want exactly the first 100000 of the blob", len(r.body))
				}
				if got := s.BytesSent[w.blobPath]; got != 100_000 {
					t.Errorf("bytes sent = %d, want 100000", got)
				}
			},
		},
		{
			name:  "cut a ranged answer (resume)",
			rules: []faultproxy.Rule{{Path: blobs, Fault: faultproxy.CutAfter(10)}},
			rng:   "bytes=1000-",
			check: func(t *testing.T, r result, s faultproxy.Stats) {
				if r.status != 206 || !errors.Is(r.err, io.ErrUnexpectedEOF) || !bytes.Equal(r.body, w.blob[1000:1010]) {
					t.Fatalf("got %d, %d bytes, err %v; want 206, blob[1000:1010], unexpected EOF", r.status, len(r.body), r.err)
				}
			},
		},
		{
			name:  "flipped byte changes the digest",
			rules: []faultproxy.Rule{{Path: blobs, Fault: faultproxy.FlipAt(123_456)}},
			check: func(t *testing.T, r result, s faultproxy.Stats) {
				if r.err != nil || r.status != 200 || len(r.body) != blobSize {
					t.Fatalf("got %d, %d bytes, err %v; want 200 and %d bytes", r.status, len(r.body), r.err, blobSize)
				}
				if sha(r.body) == sha(w.blob) {
					t.Fatal("sha256 unchanged")
				}
				for i := range r.body {
					if (r.body[i] != w.blob[i]) != (i == 123_456) {
						t.Fatalf("byte %d: got %#x, blob %#x", i, r.body[i], w.blob[i])
					}
				}
			},
		},
		{
			name:  "slow body",
			rules: []faultproxy.Rule{{Path: blobs, Fault: faultproxy.Slow(256 << 10)}},
			rng:   "bytes=0-131071", // 128 KiB at 256 KiB/s: about 0.5 s
			check: func(t *testing.T, r result, s faultproxy.Stats) {
				if r.err != nil || !bytes.Equal(r.body, w.blob[:128<<10]) {
					t.Fatalf("got %d bytes, err %v", len(r.body), r.err)
				}
				if r.elapsed < 400*time.Millisecond {
					t.Errorf("took %s, want about 500ms", r.elapsed)
				}
			},
		},
		{
			name:    "stall hangs until the client's deadline",
			rules:   []faultproxy.Rule{{Path: blobs, Fault: faultproxy.StallAfter(1000)}},
			timeout: 500 * time.Millisecond,
			check: func(t *testing.T, r result, s faultproxy.Stats) {
				if r.status != 200 || !isTimeout(r.err) || !bytes.Equal(r.body, w.blob[:1000]) {
					t.Fatalf("got %d, %d bytes, err %v; want 200, 1000 bytes, a timeout", r.status, len(r.body), r.err)
				}
				if r.elapsed < 450*time.Millisecond {
					t.Errorf("gave up after %s, before the deadline", r.elapsed)
				}
			},
		},
		{
			name:     "hang before headers",
			rules:    []faultproxy.Rule{{Path: "/manifests/", Fault: faultproxy.Hang()}},
			path:     w.manifestV1,
			timeout:  300 * time.Millisecond,
			upstream: -1,
			check: func(t *testing.T, r result, s faultproxy.Stats) {
				if r.status != 0 || !isTimeout(r.err) {
					t.Fatalf("got %d, err %v; want no answer and a timeout", r.status, r.err)
				}
			},
		},
		{
			name:     "401 midway, anonymous upstream has no challenge",
			rules:    []faultproxy.Rule{{Path: "/manifests/", Fault: faultproxy.Unauthorized()}},
			path:     w.manifestV1,
			upstream: -1,
			check: func(t *testing.T, r result, s faultproxy.Stats) {
				if r.status != 401 || r.header.Get("WWW-Authenticate") != "" {
					t.Fatalf("got %d WWW-Authenticate %q, want 401 without a challenge", r.status, r.header.Get("WWW-Authenticate"))
				}
			},
		},
		{
			name:   "a GET rule leaves HEAD alone",
			rules:  []faultproxy.Rule{{Method: "GET", Path: blobs, Fault: faultproxy.Status(500)}},
			method: "HEAD",
			check: func(t *testing.T, r result, s faultproxy.Stats) {
				if r.status != 200 || r.header.Get("Content-Length") != strconv.Itoa(blobSize) || s.Faults != 0 {
					t.Fatalf("got %d, Content-Length %q, %d faults; want 200 %d, none", r.status, r.header.Get("Content-Length"), s.Faults, blobSize)
				}
				if s.Count("HEAD", faultproxy.KindBlobs) != 1 {
					t.Errorf("HEAD blobs = %d, want 1", s.Count("HEAD", faultproxy.KindBlobs))
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			px := faultproxy.Start(t, w.reg.Host, faultproxy.WithRules(tc.rules...))
			method, path := tc.method, tc.path
			if method == "" {
				method = "GET"
			}
			if path == "" {
				path = w.blobPath
			}
			r := fetch(t, px, method, path, tc.rng, tc.timeout)
			s := px.Stats()
			tc.check(t, r, s)
			wantUp := max(tc.upstream, 0)
			if tc.upstream == 0 {
				wantUp = 1
			}
			if s.Upstream != wantUp || s.Total() != 1 {
				t.Errorf("upstream %d total %d, want %d and 1: %s", s.Upstream, s.Total(), wantUp, s)
			}
			if t.Failed() {
				t.Logf("log:\n%s", px.LogString())
			}
		})
	}
}

func TestStatuses(t *testing.T) {
	w := newWorld(t)
	for _, code := range []int{500, 502, 503, 408, 429} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			px := faultproxy.Start(t, w.reg.Host, faultproxy.WithRules(faultproxy.Rule{Path: "/blobs/", Fault: faultproxy.Status(code)}))
			r := fetch(t, px, "GET", w.blobPath, "", 0)
			if r.err != nil || r.status != code || r.header.Get("Retry-After") != "" {
				t.Fatalf("got %d Retry-After %q err %v, want %d without Retry-After", r.status, r.header.Get("Retry-After"), r.err, code)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	w := newWorld(t)
	fault := faultproxy.Status(503)
	for _, tc := range []struct {
		name string
		when faultproxy.Schedule
		want []int // statuses of successive GETs
	}{
		{"nth 2", faultproxy.Nth(2), []int{200, 503, 200, 200}},
		{"first 2", faultproxy.First(2), []int{503, 503, 200, 200}},
		{"always", faultproxy.Always(), []int{503, 503, 503, 503}},
		{"zero value is always", faultproxy.Schedule{}, []int{503, 503, 503, 503}},
		{"from 3 on", faultproxy.Schedule{From: 3}, []int{200, 200, 503, 503}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			px := faultproxy.Start(t, w.reg.Host)
			h := px.Add(faultproxy.Rule{Method: "GET", Path: "/manifests/", When: tc.when, Fault: fault})
			var got []int
			for range tc.want {
				// A HEAD and a blob GET in between must not advance the rule.
				fetch(t, px, "HEAD", w.manifestV1, "", 0)
				fetch(t, px, "GET", w.blobPath, "bytes=0-0", 0)
				got = append(got, fetch(t, px, "GET", w.manifestV1, "", 0).status)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("statuses %v, want %v\n%s", got, tc.want, px.LogString())
			}
			fired := 0
			for _, s := range tc.want {
				if s == 503 {
					fired++
				}
			}
			if h.Matched() != len(tc.want) || h.Fired() != fired {
				t.Errorf("matched %d fired %d, want %d and %d", h.Matched(), h.Fired(), len(tc.want), fired)
			}
			s := px.Stats()
			if s.Count("GET", faultproxy.KindManifests) != 4 || s.Count("HEAD", faultproxy.KindManifests) != 4 ||
				s.Count("GET", faultproxy.KindBlobs) != 4 || s.RangeRequests != 4 || s.Faults != fired {
				t.Errorf("counters: %s", s)
			}
		})
	}

	t.Run("first added rule wins, both count", func(t *testing.T) {
		px := faultproxy.Start(t, w.reg.Host)
		a := px.Add(faultproxy.Rule{Name: "a", Path: "/manifests/", When: faultproxy.Nth(1), Fault: faultproxy.Status(500)})
		b := px.Add(faultproxy.Rule{Name: "b", Path: "/manifests/", When: faultproxy.First(2), Fault: faultproxy.Status(502)})
		var got []int
		for range 3 {
			got = append(got, fetch(t, px, "GET", w.manifestV1, "", 0).status)
		}
		if fmt.Sprint(got) != "[500 502 200]" || a.Fired() != 1 || b.Fired() != 1 || b.Matched() != 3 {
			t.Errorf("statuses %v, a fired %d, b fired %d matched %d", got, a.Fired(), b.Fired(), b.Matched())
		}
		log := px.Log()
		if len(log) != 3 || log[0].Fault != "a" || log[1].Fault != "b" || log[2].Fault != "" || log[2].Status != 200 {
			t.Errorf("log:\n%s", px.LogString())
		}
		px.ClearRules()
		px.ResetCounters()
		if r := fetch(t, px, "GET", w.manifestV1, "", 0); r.status != 200 || px.Stats().Total() != 1 {
			t.Errorf("after ClearRules/ResetCounters: %d, %s", r.status, px.Stats())
		}
	})
}

// TestUnauthorizedChallenge puts the proxy in front of an htpasswd registry
// over TLS: an injected 401 carries the registry's own challenge.
func TestUnauthorizedChallenge(t *testing.T) {
	reg := testregistry.Start(t, testregistry.Options{TLS: true, Users: map[string]string{"alice": "s3cret"}})
	px := faultproxy.Start(t, reg.Host, faultproxy.UpstreamTLS(reg.CAPool()))
	px.Add(faultproxy.Rule{Path: "^/v2/$", When: faultproxy.Nth(2), Fault: faultproxy.Unauthorized()})
	c := &http.Client{Transport: newTransport()}
	get := func() (int, string) {
		req, _ := http.NewRequest("GET", px.URL()+"/v2/", nil)
		req.SetBasicAuth("alice", "s3cret")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
	}
	if code, _ := get(); code != 200 {
		t.Fatalf("authenticated GET /v2/ through the proxy: %d\n%s", code, px.LogString())
	}
	code, chal := get()
	if code != 401 || !strings.Contains(chal, `realm="testregistry"`) {
		t.Fatalf("injected: %d %q, want 401 with the registry's Basic challenge", code, chal)
	}
	if code, _ := get(); code != 200 {
		t.Fatalf("after the injected 401: %d", code)
	}
}

func TestBlackhole(t *testing.T) {
	host := faultproxy.Blackhole(t)
	c := &http.Client{Transport: newTransport(), Timeout: 300 * time.Millisecond}
	start := time.Now()
	resp, err := c.Get("http://" + host + "/v2/")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got an answer: %s", resp.Status)
	}
	if !isTimeout(err) || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("err %v after %s, want a timeout at the deadline", err, time.Since(start))
	}
}

// TestEditHeader: the edited header replaces (or removes) the upstream's;
// status and body are forwarded intact.
func TestEditHeader(t *testing.T) {
	w := newWorld(t)
	const other = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	px := faultproxy.Start(t, w.reg.Host)
	var seen string
	h := px.Add(faultproxy.Rule{Method: "GET", Path: "/manifests/", When: faultproxy.Nth(1), Fault: faultproxy.EditHeader("docker-content-digest", func(v string) string { seen = v; return other })})
	px.Add(faultproxy.Rule{Method: "GET", Path: "/manifests/", When: faultproxy.Nth(2), Fault: faultproxy.EditHeader("Docker-Content-Digest", func(string) string { return "" })})
	r := fetch(t, px, "GET", w.manifestV1, "", 0)
	if r.err != nil || r.status != 200 || r.header.Get("Docker-Content-Digest") != other || !bytes.Equal(r.body, w.manifest) || seen != "sha256:"+sha(w.manifest) || h.Fired() != 1 {
		t.Fatalf("edited: %d %q (upstream's %q) err %v", r.status, r.header.Get("Docker-Content-Digest"), seen, r.err)
	}
	if r := fetch(t, px, "GET", w.manifestV1, "", 0); r.status != 200 || r.header.Values("Docker-Content-Digest") != nil {
		t.Errorf("removed: %d %q", r.status, r.header.Values("Docker-Content-Digest"))
	}
	if log := px.Log(); log[0].Fault != "header Docker-Content-Digest" {
		t.Errorf("log:\n%s", px.LogString())
	}
}

// TestForward: another loopback address reaches the registry, byte for byte.
func TestForward(t *testing.T) {
	w := newWorld(t)
	host := faultproxy.Forward(t, "127.0.0.2:0", w.reg.Host)
	if !strings.HasPrefix(host, "127.0.0.2:") {
		t.Fatalf("listening on %s", host)
	}
	c := &http.Client{Transport: newTransport(), Timeout: 30 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://" + host + w.blobPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(b, w.blob) {
		t.Fatalf("through the forward: %d, %d bytes, %v", resp.StatusCode, len(b), err)
	}
}
