package registry

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
)

// fakeRegistry answers /v2/ and the manifests and referrers it is given,
// 404 for anything else, and records what it was asked.
type fakeRegistry struct {
	*httptest.Server
	mu    sync.Mutex
	asked []string
}

func newFakeRegistry(t *testing.T, answers map[string]string) *fakeRegistry {
	f := &fakeRegistry{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.asked = append(f.asked, r.URL.Path+" "+r.Header.Get("Accept"))
		f.mu.Unlock()
		if r.URL.Path == "/v2/" {
			return
		}
		body, ok := answers[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
		fmt.Fprint(w, body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeRegistry) host() string { return strings.TrimPrefix(f.URL, "http://") }

func (f *fakeRegistry) requests() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.asked, "\n")
}

// The endpoint of an image is the first source that has it; the
// referrers API is asked there, and a 404 from it says "not supported"
// (the caller reads the tag schema from the same endpoint) without asking
// the registry behind the mirror. Issue 15, defect 4.
func TestEndpointReferrers(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("REGISTRY_AUTH_FILE", "")
	index := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`
	app, other := digest.FromString(index), digest.FromString(index+" ")
	api := newFakeRegistry(t, map[string]string{
		"/v2/team/app/manifests/" + app.String():  index,
		"/v2/team/app/referrers/" + app.String():  index,
		"/v2/other/x/manifests/" + other.String(): index + " ",
	})
	mirror := newFakeRegistry(t, map[string]string{
		"/v2/other/x/manifests/" + other.String(): index + " ",
	})
	body := fmt.Sprintf("[registries.%q]\ninsecure = true\nmirrors = [{ location = %q, insecure = true }]\n[[group]]\nname = \"g\"\nimages = [\"%s/team/app:v1\", \"%s/other/x:v1\"]\n",
		api.host(), mirror.host(), api.host(), api.host())
	env, err := New(loadSpec(t, body), Options{UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	ctx := context.Background()

	// The mirror lacks team/app: the registry serves it, API and all.
	repo, _ := reference.ParseNormalizedNamed(api.host() + "/team/app")
	ep, err := env.Endpoint(ctx, repo, app)
	if err != nil || ep.String() != api.host()+"/team/app" {
		t.Fatalf("endpoint of team/app: %v %v", ep, err)
	}
	got, ok, err := ep.Referrers(ctx, app)
	if err != nil || !ok || string(got) != index {
		t.Fatalf("referrers: %q %v %v (asked %v)", got, ok, err, api.requests())
	}
	if !strings.Contains(api.requests(), "referrers/"+app.String()+" application/vnd.oci.image.index.v1+json") {
		t.Errorf("requests: %v", api.requests())
	}

	// The mirror has other/x and no referrers API: "not supported", and
	// the tag schema is read from the mirror too.
	repo, _ = reference.ParseNormalizedNamed(api.host() + "/other/x")
	ep, err = env.Endpoint(ctx, repo, other)
	if err != nil || ep.String() != mirror.host()+"/other/x" {
		t.Fatalf("endpoint of other/x: %v %v", ep, err)
	}
	before := api.requests()
	if got, ok, err := ep.Referrers(ctx, other); err != nil || ok || got != nil {
		t.Errorf("no API: %q %v %v", got, ok, err)
	}
	if _, _, found, err := ep.Manifest(ctx, "sha256-"+other.Encoded()); found || err != nil {
		t.Errorf("tag schema: found %v, %v", found, err)
	}
	if after := api.requests(); after != before {
		t.Errorf("the registry behind the mirror was asked:\n%s", strings.TrimPrefix(after, before))
	}
	if !strings.Contains(mirror.requests(), "/v2/other/x/referrers/"+other.String()) || !strings.Contains(mirror.requests(), "/v2/other/x/manifests/sha256-"+other.Encoded()) {
		t.Errorf("mirror requests: %v", mirror.requests())
	}

	if _, _, found, err := ep.Manifest(ctx, app.String()); found || err != nil {
		t.Errorf("a manifest the mirror lacks: found %v, %v", found, err)
	}

	// A manifest whose content is not its digest is refused.
	wrong := newFakeRegistry(t, map[string]string{"/v2/other/x/manifests/" + other.String(): "{}"})
	body = fmt.Sprintf("[registries.%q]\ninsecure = true\n[[group]]\nname = \"g\"\nimages = [\"%s/other/x:v1\"]\n", wrong.host(), wrong.host())
	env2, err := New(loadSpec(t, body), Options{UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer env2.Close()
	repo, _ = reference.ParseNormalizedNamed(wrong.host() + "/other/x")
	ep, err = env2.Endpoint(ctx, repo, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := ep.Manifest(ctx, other.String()); err == nil || !strings.Contains(err.Error(), "content with digest") {
		t.Errorf("wrong content accepted: %v", err)
	}
}
