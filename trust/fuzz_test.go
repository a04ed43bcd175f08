package trust

import "testing"

// FuzzParseReferrers: a referrers index comes from a registry (the API or
// the sha256-<hex> tag); whatever it holds, ParseReferrers returns only
// sha256 image manifests of plausible size, each once, or an error.
func FuzzParseReferrers(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `","size":10,"artifactType":"text/spdx+json"}]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[]}`))
	f.Add([]byte(`{"schemaVersion":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ds, err := ParseReferrers(b)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, d := range ds {
			if d.Digest.Validate() != nil || d.Size <= 0 || seen[d.Digest.String()] {
				t.Fatalf("bad descriptor %+v", d)
			}
			seen[d.Digest.String()] = true
		}
	})
}
