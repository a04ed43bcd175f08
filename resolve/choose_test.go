package resolve

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/image"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/manifest"
)

func dg(s string) digest.Digest { return digest.FromString(s) }

// An index like the ones registries serve: arm64 written with its v8
// variant, arm only as v6, a BuildKit attestation, and an artifact.
func testIndex(t *testing.T) manifest.List {
	t.Helper()
	entry := func(name, mt, platform, extra string) string {
		return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":100,"platform":%s%s}`, mt, dg(name), platform, extra)
	}
	const m = "application/vnd.oci.image.manifest.v1+json"
	blob := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` + strings.Join([]string{
		entry("amd64", m, `{"os":"linux","architecture":"amd64"}`, ""),
		entry("arm64", m, `{"os":"linux","architecture":"arm64","variant":"v8"}`, ""),
		entry("armv6", m, `{"os":"linux","architecture":"arm","variant":"v6"}`, ""),
		entry("attest", m, `{"os":"unknown","architecture":"unknown"}`, `,"annotations":{"vnd.docker.reference.type":"attestation-manifest"}`),
		entry("amd64-dup", m, `{"os":"linux","architecture":"amd64"}`, ""),
	}, ",") + `]}`
	l, err := manifest.ListFromBlob([]byte(blob), "application/vnd.oci.image.index.v1+json")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestChoose(t *testing.T) {
	list := testIndex(t)
	cases := []struct {
		want    string // platforms, comma-separated, or "all"
		chosen  string // digests' names, comma-separated
		errWant string
	}{
		{"linux/amd64", "amd64", ""},
		{"linux/arm64", "arm64", ""},
		{"linux/arm64/v8", "arm64", ""},
		{"linux/arm/v7", "armv6", ""}, // the nearest older variant, as containerd does
		{"linux/arm64,linux/amd64", "arm64,amd64", ""},
		{"all", "amd64,arm64,armv6", ""}, // no attestation, first entry of a platform only
		{"linux/s390x,linux/amd64", "", "linux/s390x (the image has linux/amd64, linux/arm64, linux/arm/v6)"},
		{"linux/arm/v5", "", "linux/arm/v5"},
	}
	names := map[digest.Digest]string{}
	for _, n := range []string{"amd64", "arm64", "armv6", "attest", "amd64-dup"} {
		names[dg(n)] = n
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			set, errs := image.ParsePlatformSet(strings.Split(c.want, ","))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			got, err := choose(list, set)
			if c.errWant != "" {
				if err == nil || !errors.Is(err, ErrPlatform) || !strings.Contains(err.Error(), c.errWant) {
					t.Fatalf("err = %v, want ErrPlatform with %q", err, c.errWant)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var gotNames []string
			for _, ch := range got {
				gotNames = append(gotNames, names[ch.digest])
			}
			if strings.Join(gotNames, ",") != c.chosen {
				t.Errorf("chose %v, want %s", gotNames, c.chosen)
			}
		})
	}
}
