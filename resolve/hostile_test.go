package resolve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/types"

	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// A hostile or broken registry is what docker-registry will not be made to
// be, so these cases use an httptest server that serves exactly the bytes
// given, under the content type given.

type served struct {
	ct   string // Content-Type; "" sends none
	body []byte
}

type hostile struct {
	manifests map[string]served // by tag or digest
	blobs     map[string][]byte // by digest
}

func (h *hostile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	p := r.URL.Path
	switch {
	case p == "/v2/":
		w.WriteHeader(http.StatusOK)
	case strings.HasPrefix(p, "/v2/hostile/manifests/"):
		m, ok := h.manifests[strings.TrimPrefix(p, "/v2/hostile/manifests/")]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`)
			return
		}
		if m.ct == "" {
			w.Header()["Content-Type"] = nil // no sniffing either
		} else {
			w.Header().Set("Content-Type", m.ct)
		}
		w.Header().Set("Docker-Content-Digest", digest.FromBytes(m.body).String())
		w.Write(m.body)
	case strings.HasPrefix(p, "/v2/hostile/blobs/"):
		b, ok := h.blobs[strings.TrimPrefix(p, "/v2/hostile/blobs/")]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}`)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(b)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

const (
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	ociIndex    = "application/vnd.oci.image.index.v1+json"
	ociConfig   = "application/vnd.oci.image.config.v1+json"
	ociLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

func manifestFor(config []byte, configSize int64, layerSize int64) []byte {
	return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[{"mediaType":%q,"digest":%q,"size":%d}]}`,
		ociManifest, ociConfig, digest.FromBytes(config), configSize, ociLayer, digest.FromString("layer"), layerSize))
}

func indexOf(entries ...string) []byte {
	return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[%s]}`, ociIndex, strings.Join(entries, ",")))
}

func entry(mt string, blob []byte, platform string) string {
	return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d,"platform":%s}`, mt, digest.FromBytes(blob), len(blob), platform)
}

func TestResolveHostileRegistry(t *testing.T) {
	testregistry.Isolate(t)
	goodConfig := []byte(`{"architecture":"arm64","os":"linux","variant":"v8","rootfs":{"type":"layers","diff_ids":[]}}`)
	goodManifest := manifestFor(goodConfig, int64(len(goodConfig)), 1000)
	// Same length as goodConfig, other bytes.
	forgedConfig := []byte(strings.Replace(string(goodConfig), "arm64", "amd64", 1))
	noPlatformConfig := []byte(`{"rootfs":{"type":"layers","diff_ids":[]}}`)
	notJSONConfig := []byte(`not json`)
	childIndex := indexOf(entry(ociManifest, goodManifest, `{"os":"linux","architecture":"arm64"}`))

	h := &hostile{
		manifests: map[string]served{
			"schema1": {"application/vnd.docker.distribution.manifest.v1+prettyjws",
				[]byte(`{"schemaVersion":1,"name":"hostile","tag":"schema1","architecture":"amd64","fsLayers":[],"history":[]}`)},
			"huge":        {ociManifest, []byte(`{"schemaVersion":2,"x":"` + strings.Repeat("a", 4<<20) + `"}`)},
			"untyped":     {"", goodManifest},
			"forged":      {ociManifest, manifestFor(goodConfig, int64(len(goodConfig)), 1000)},
			"bigconfig":   {ociManifest, manifestFor(goodConfig, 9<<20, 1000)},
			"noplatform":  {ociManifest, manifestFor(noPlatformConfig, int64(len(noPlatformConfig)), 1000)},
			"notjson":     {ociManifest, manifestFor(notJSONConfig, int64(len(notJSONConfig)), 1000)},
			"noconfig":    {ociManifest, manifestFor([]byte("absent"), 6, 1000)},
			"nosize":      {ociManifest, manifestFor(goodConfig, int64(len(goodConfig)), -1)},
			"badmanifest": {ociManifest, []byte(`{"schemaVersion":2,"mediaType":"` + ociManifest + `","layers":"not a list"}`)},
			"badindex":    {ociIndex, []byte(`{"schemaVersion":2,"mediaType":"` + ociIndex + `","manifests":"not a list"}`)},
			"attestonly": {ociIndex, indexOf(fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d,"platform":{"os":"unknown","architecture":"unknown"},"annotations":{"vnd.docker.reference.type":"attestation-manifest"}}`,
				ociManifest, digest.FromBytes(goodManifest), len(goodManifest)))},
			// An index whose arm64 entry the registry answers with other bytes.
			"swapped": {ociIndex, indexOf(entry(ociManifest, []byte("the manifest listed"), `{"os":"linux","architecture":"arm64"}`))},
			// An index whose "manifest" entry is an index.
			"nested": {ociIndex, indexOf(entry(ociManifest, childIndex, `{"os":"linux","architecture":"arm64"}`))},
		},
		blobs: map[string][]byte{
			digest.FromBytes(goodConfig).String():       forgedConfig, // for "forged" and "untyped"
			digest.FromBytes(noPlatformConfig).String(): noPlatformConfig,
			digest.FromBytes(notJSONConfig).String():    notJSONConfig,
		},
	}
	h.manifests[digest.FromBytes([]byte("the manifest listed")).String()] = served{ociManifest, goodManifest}
	h.manifests[digest.FromBytes(childIndex).String()] = served{ociIndex, childIndex}
	// A digest pin the registry answers with other bytes.
	pinned := digest.FromString("pinned manifest")
	h.manifests[pinned.String()] = served{ociManifest, goodManifest}

	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	r := &Resolver{Sys: sysFor(t, fmt.Sprintf("[registries.%q]\ninsecure = true\n", host))}

	cases := []struct {
		ref      string // after host/hostile
		want     string
		platform bool
		msg      string
	}{
		{":schema1", "all", false, `unsupported manifest type "application/vnd.docker.distribution.manifest.v1+prettyjws" (schema 1 and artifacts cannot be bundled`},
		{":huge", "all", false, "4194304"},
		{":forged", "all", false, fmt.Sprintf("config %s: registry sent content with digest %s", digest.FromBytes(goodConfig), digest.FromBytes(forgedConfig))},
		{":bigconfig", "all", false, fmt.Sprintf("config %s is %d bytes, over the %d limit", digest.FromBytes(goodConfig), 9<<20, 8<<20)},
		{":noplatform", "all", false, fmt.Sprintf("config %s names no os/architecture", digest.FromBytes(noPlatformConfig))},
		{":notjson", "all", false, fmt.Sprintf("parsing config %s: ", digest.FromBytes(notJSONConfig))},
		{":noconfig", "all", false, fmt.Sprintf("reading config %s: ", digest.FromBytes([]byte("absent")))},
		{":nosize", "all", false, fmt.Sprintf("layer %s has no size", digest.FromString("layer"))},
		{":badmanifest", "all", false, "parsing manifest: "},
		{":badindex", "all", false, "parsing index " + digest.FromBytes(h.manifests["badindex"].body).String() + ": "},
		{":attestonly", "all", true, "the index lists no image platforms"},
		{":swapped", "linux/arm64", false, fmt.Sprintf("platform linux/arm64: registry sent manifest %s for %s", digest.FromBytes(goodManifest), digest.FromBytes([]byte("the manifest listed")))},
		{":nested", "linux/arm64", false, fmt.Sprintf("platform linux/arm64: index entry is %q, not an image manifest", ociIndex)},
		{"@" + pinned.String(), "all", false, fmt.Sprintf("registry sent a manifest with digest %s, not the pinned %s", digest.FromBytes(goodManifest), pinned)},
	}
	for _, c := range cases {
		t.Run(c.ref, func(t *testing.T) {
			got, err := r.Resolve(context.Background(), ref(t, host+"/hostile"+c.ref), platforms(t, c.want), image.IndexFiltered)
			if err == nil {
				t.Fatalf("resolved to %+v, want an error", got)
			}
			if errors.Is(err, ErrPlatform) != c.platform || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v\nwant %q (ErrPlatform: %v)", err, c.msg, c.platform)
			}
		})
	}

	// No Content-Type: the type is guessed from the manifest itself. The
	// config is then fetched, and it is the forged one: so this also shows
	// the guess led to a full resolution attempt.
	t.Run("untyped manifest is guessed", func(t *testing.T) {
		_, err := r.Resolve(context.Background(), ref(t, host+"/hostile:untyped"), platforms(t, "all"), image.IndexOriginal)
		if err == nil || !strings.Contains(err.Error(), "registry sent content with digest "+digest.FromBytes(forgedConfig).String()) {
			t.Fatalf("err = %v, want the config check to be reached", err)
		}
	})
}

// containers/image refuses manifests over 4 MiB before resolve sees them;
// resolve's own limit is checked with a source that does not.
type bigSource struct {
	types.ImageSource
	blob []byte
	mt   string
}

func (s bigSource) GetManifest(context.Context, *digest.Digest) ([]byte, string, error) {
	return s.blob, s.mt, nil
}

func TestGetManifestLimits(t *testing.T) {
	big := []byte(`{"schemaVersion":2,"x":"` + strings.Repeat("a", image.MaxManifestSize) + `"}`)
	_, _, err := getManifest(context.Background(), bigSource{blob: big, mt: ociManifest}, nil)
	if want := fmt.Sprintf("manifest is %d bytes, over the %d limit", len(big), image.MaxManifestSize); err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
	// An artifact type is refused too. (manifest.NormalizedMIMEType maps
	// every type it does not know to schema 1, so that is the type the
	// message names, not the one the registry sent.)
	_, _, err = getManifest(context.Background(), bigSource{blob: []byte(`{}`), mt: "application/vnd.example.artifact+json"}, nil)
	if err == nil || !strings.Contains(err.Error(), `unsupported manifest type "application/vnd.docker.distribution.manifest.v1+prettyjws"`) {
		t.Errorf("err = %v", err)
	}
}
