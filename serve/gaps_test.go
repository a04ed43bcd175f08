package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// An unsatisfiable range is a registry JSON error (416 RANGE_INVALID, the
// size in Content-Range) like every other error, not http.ServeContent's
// text/plain; so is a failed precondition.
func TestServeRangeErrorsAreJSON(t *testing.T) {
	f, srv := start(t)
	base := srv.URL + "/v2/docker.io/library/busybox"
	layer := f.amd64.Layers[0]
	for _, u := range []string{base + "/blobs/" + layer.Digest.String(), base + "/manifests/1.36", base + "/tags/list"} {
		for _, rg := range []string{"bytes=99999999-", "bytes=abc", "bytes=5-2"} {
			resp, body := do(t, "GET", u, "Range", rg)
			var e struct{ Errors []struct{ Code string } }
			if resp.StatusCode != 416 || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &e) != nil ||
				len(e.Errors) != 1 || e.Errors[0].Code != "RANGE_INVALID" || resp.Header.Get("Docker-Content-Digest") != "" {
				t.Errorf("%s Range %s: %d %s %q", u, rg, resp.StatusCode, resp.Header, body)
			}
		}
	}
	resp, _ := do(t, "GET", base+"/blobs/"+layer.Digest.String(), "Range", "bytes=99999999-")
	if got, want := resp.Header.Get("Content-Range"), "bytes */"+strconv.FormatInt(layer.Size, 10); got != want {
		t.Errorf("Content-Range %q, want %q", got, want)
	}
	resp, body := do(t, "GET", base+"/blobs/"+layer.Digest.String(), "If-Match", `"sha256:other"`)
	var e struct{ Errors []struct{ Code string } }
	if resp.StatusCode != 412 || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &e) != nil || len(e.Errors) != 1 {
		t.Errorf("If-Match: %d %s %q", resp.StatusCode, resp.Header, body)
	}
}

// tags/list is paginated as the distribution spec says: lexical order,
// "last" and "n", a Link header to the next page while there are more
// (keeping ?ns=); go-containerregistry's client follows it.
func TestServeTagsPagination(t *testing.T) {
	dir := t.TempDir()
	writeFixtureNamed(t, dir, "docker.io/library/busybox:1.36", "docker.io/library/busybox:c", "docker.io/library/busybox:a",
		"docker.io/library/busybox:latest", "docker.io/library/busybox:b")
	r, _, err := Open(context.Background(), []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer func() { srv.Close(); r.Close() }()
	list := func(u string) ([]string, string) {
		t.Helper()
		resp, body := do(t, "GET", srv.URL+u)
		var tl struct {
			Name string
			Tags []string
		}
		if err := json.Unmarshal(body, &tl); resp.StatusCode != 200 || err != nil || tl.Tags == nil {
			t.Fatalf("%s: %d %s", u, resp.StatusCode, body)
		}
		return tl.Tags, resp.Header.Get("Link")
	}
	const path = "/v2/docker.io/library/busybox/tags/list"
	var pages [][]string
	for u := path + "?n=2"; u != ""; {
		tags, link := list(u)
		pages = append(pages, tags)
		u = ""
		if link != "" {
			next, rel, ok := strings.Cut(link, ">; ")
			if !ok || rel != `rel="next"` || !strings.HasPrefix(next, "<"+path+"?") {
				t.Fatalf("Link %q", link)
			}
			u = next[1:]
		}
	}
	if got := fmt.Sprint(pages); got != "[[1.36 a] [b c] [latest]]" {
		t.Errorf("pages of 2: %s", got)
	}
	for u, want := range map[string]string{
		path:                                   "[1.36 a b c latest]",
		path + "?last=b":                       "[c latest]",
		path + "?last=bb&n=2":                  "[c latest]",
		path + "?last=latest":                  "[]",
		path + "?n=0":                          "[]",
		path + "?n=100":                        "[1.36 a b c latest]",
		"/v2/library/busybox/tags/list?n=5":    "[1.36 a b c latest]",
		"/v2/library/busybox/tags/list?last=c": "[latest]",
	} {
		if tags, link := list(u); fmt.Sprint(tags) != want || link != "" {
			t.Errorf("%s: %v, Link %q; want %s and no Link", u, tags, link, want)
		}
	}
	if _, link := list("/v2/library/busybox/tags/list?ns=docker.io&n=3"); link != `</v2/library/busybox/tags/list?last=b&n=3&ns=docker.io>; rel="next"` {
		t.Errorf("Link of the mirror form: %q", link)
	}
	for _, n := range []string{"-1", "x", "1.5"} {
		expectError(t, "GET", srv.URL+path+"?n="+n, 400, "PAGINATION_NUMBER_INVALID")
	}

	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://")+"/docker.io/library/busybox", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if tags, err := remote.List(repo, remote.WithPageSize(2)); err != nil || fmt.Sprint(tags) != "[1.36 a b c latest]" {
		t.Errorf("remote.List by pages of 2: %v, %v", tags, err)
	}
}

// An archive linked into a served directory is served; a link that leads
// nowhere is logged, saying why, not passed over in silence.
func TestServeSymlinkedArchive(t *testing.T) {
	elsewhere, dir := t.TempDir(), t.TempDir()
	f := writeFixture(t, elsewhere)
	if err := os.Symlink(f.path, filepath.Join(dir, "group.tar")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(elsewhere, "gone.tar"), filepath.Join(dir, "gone.tar")); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	r, archives, err := Open(context.Background(), []string{dir}, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer func() { srv.Close(); r.Close() }()
	if len(archives) != 1 || archives[0].Images != 1 {
		t.Errorf("archives: %+v", archives)
	}
	if resp, body := do(t, "GET", srv.URL+"/v2/docker.io/library/busybox/manifests/1.36"); resp.StatusCode != 200 || !bytes.Equal(body, f.indexRaw) {
		t.Errorf("the linked archive's image: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "gone.tar: a symlink that leads nowhere") {
		t.Errorf("log: %s", logs)
	}
}
