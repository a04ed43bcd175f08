package registry

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
)

// The referrers API is asked through the run's transport; a registry
// without it (404) says "not supported", so the caller falls back to the
// tag schema.
func TestReferrersAPI(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("REGISTRY_AUTH_FILE", "")
	subject := digest.FromString("subject")
	index := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`
	var asked []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Path+" "+r.Header.Get("Accept"))
		switch r.URL.Path {
		case "/v2/":
			w.WriteHeader(http.StatusOK)
		case "/v2/team/app/referrers/" + subject.String():
			w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
			fmt.Fprint(w, index)
		default:
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	host := strings.TrimPrefix(api.URL, "http://")
	body := fmt.Sprintf("[registries.%q]\ninsecure = true\n[[group]]\nname = \"g\"\nimages = [\"%s/team/app:v1\", \"%s/other/x:v1\"]\n", host, host, host)
	s := loadSpec(t, body)
	env, err := New(s, Options{UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	ctx := context.Background()
	repo, _ := reference.ParseNormalizedNamed(host + "/team/app")
	got, ok, err := env.Referrers(ctx, repo, subject)
	if err != nil || !ok || string(got) != index {
		t.Fatalf("referrers: %q %v %v (asked %v)", got, ok, err, asked)
	}
	if !strings.Contains(strings.Join(asked, "\n"), "referrers/"+subject.String()+" application/vnd.oci.image.index.v1+json") {
		t.Errorf("requests: %v", asked)
	}
	other, _ := reference.ParseNormalizedNamed(host + "/other/x")
	if got, ok, err := env.Referrers(ctx, other, subject); err != nil || ok || got != nil {
		t.Errorf("no API: %q %v %v", got, ok, err)
	}
}
