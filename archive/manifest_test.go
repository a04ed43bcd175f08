package archive

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/image"
)

func TestParseManifest(t *testing.T) {
	blobs := newMemBlobs()
	l1 := testLayer(t, gzTar(t, "a", "1"), types.DockerLayer)
	l2 := testLayer(t, gzTar(t, "b", "2"), types.DockerLayer)
	for _, oci := range []bool{false, true} {
		img, m := testImage(t, blobs, oci, "arm64", l1, l2)
		raw, _ := img.RawManifest()
		mt, _ := img.MediaType()
		cfgName, _ := img.ConfigName()
		if m.MediaType != image.MediaType(mt) || m.Digest != digest.FromBytes(raw) || m.Size != int64(len(raw)) {
			t.Errorf("oci=%v: descriptor %+v", oci, m.Descriptor)
		}
		if m.Config.Digest.String() != cfgName.String() || m.Config.Size != int64(len(blobs.data[m.Config.Digest])) {
			t.Errorf("oci=%v: config %+v", oci, m.Config)
		}
		layers, _ := img.Layers()
		if len(m.Layers) != len(layers) {
			t.Fatalf("oci=%v: %d layers", oci, len(m.Layers))
		}
		for i, l := range layers {
			d, _ := l.Digest()
			size, _ := l.Size()
			lmt, _ := l.MediaType()
			if m.Layers[i] != (image.Descriptor{MediaType: image.MediaType(lmt), Digest: digest.Digest(d.String()), Size: size}) {
				t.Errorf("oci=%v: layer %d = %+v", oci, i, m.Layers[i])
			}
		}
	}

	w := newWorld(t)
	pauseRaw := w.blobs.data[w.pause.Digest]
	bad := []struct {
		name string
		blob []byte
		mt   image.MediaType
	}{
		{"index media type", w.indexRaw, image.OCIIndex},
		{"index blob as manifest", w.indexRaw, image.OCIManifest},
		{"media type mismatch", pauseRaw, image.OCIManifest},
		{"schema 1", []byte(`{"schemaVersion":1,"name":"x"}`), image.DockerManifest},
		{"docker without mediaType", []byte(`{"schemaVersion":2,"config":{"digest":"` + digest.FromString("c").String() + `","size":1},"layers":[]}`), image.DockerManifest},
		{"no config", []byte(`{"schemaVersion":2,"layers":[]}`), image.OCIManifest},
		{"bad layer digest", []byte(`{"schemaVersion":2,"config":{"digest":"` + digest.FromString("c").String() + `","size":1},"layers":[{"digest":"sha256:12","size":1}]}`), image.OCIManifest},
		{"no layer size", []byte(`{"schemaVersion":2,"config":{"digest":"` + digest.FromString("c").String() + `","size":1},"layers":[{"digest":"` + digest.FromString("l").String() + `"}]}`), image.OCIManifest},
		{"not JSON", []byte(`{`), image.OCIManifest},
		{"unknown media type", pauseRaw, "application/json"},
	}
	for _, tc := range bad {
		if _, err := image.ParseManifest(tc.blob, tc.mt); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	// An OCI manifest may leave mediaType out.
	ok := `{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + digest.FromString("c").String() + `","size":1},"layers":[]}`
	if m, err := image.ParseManifest([]byte(ok), image.OCIManifest); err != nil || len(m.Layers) != 0 || m.Config.Size != 1 {
		t.Errorf("OCI manifest without mediaType: %+v, %v", m, err)
	}
}

func TestFilterIndex(t *testing.T) {
	blobs := newMemBlobs()
	var imgs []v1.Image
	var ds []digest.Digest
	archs := []string{"amd64", "arm64", "s390x", "ppc64le"}
	for _, arch := range archs {
		img, m := testImage(t, blobs, true, arch, testLayer(t, gzTar(t, "f", arch), types.OCILayer))
		imgs = append(imgs, img)
		ds = append(ds, m.Digest)
	}
	for _, oci := range []bool{true, false} {
		raw, desc := testIndex(t, blobs, oci, imgs, archs)
		// Extra top-level field and annotations must survive.
		var obj map[string]any
		if err := json.Unmarshal(raw, &obj); err != nil {
			t.Fatal(err)
		}
		obj["annotations"] = map[string]any{"org.example": "kept <&>"}
		raw, _ = json.MarshalIndent(obj, "", "   ")

		for _, keep := range [][]digest.Digest{
			{ds[1]},
			{ds[2], ds[0]},
			{ds[0], ds[1], ds[2], ds[3]},
		} {
			out, err := image.FilterIndex(raw, desc.MediaType, keep)
			if err != nil {
				t.Fatalf("oci=%v keep %v: %v", oci, keep, err)
			}
			again, _ := image.FilterIndex(raw, desc.MediaType, keepRev(keep))
			if !bytes.Equal(out, again) {
				t.Errorf("oci=%v: keep order changes the bytes", oci)
			}
			var got struct {
				SchemaVersion int             `json:"schemaVersion"`
				MediaType     string          `json:"mediaType"`
				Manifests     []v1.Descriptor `json:"manifests"`
				Annotations   map[string]string
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if image.MediaType(got.MediaType) != desc.MediaType || got.SchemaVersion != 2 || got.Annotations["org.example"] != "kept <&>" {
				t.Errorf("oci=%v: header changed: %s", oci, out)
			}
			// Original order, only the kept ones, entries unchanged.
			var wantDigests []string
			for _, d := range ds {
				if slices.Contains(keep, d) {
					wantDigests = append(wantDigests, d.String())
				}
			}
			var gotDigests []string
			for _, m := range got.Manifests {
				gotDigests = append(gotDigests, m.Digest.String())
				if m.Platform == nil || m.Annotations["test.arch"] != m.Platform.Architecture || m.Size == 0 || image.MediaType(m.MediaType) != image.OCIManifest {
					t.Errorf("oci=%v: entry changed: %+v", oci, m)
				}
			}
			if !slices.Equal(gotDigests, wantDigests) {
				t.Errorf("oci=%v keep %v: manifests %v, want %v", oci, keep, gotDigests, wantDigests)
			}
			// Everything except the manifests array is byte-for-byte the
			// compacted original, keys in their original order.
			var compact bytes.Buffer
			_ = json.Compact(&compact, raw)
			before, _, _ := strings.Cut(compact.String(), `"manifests":`)
			if !strings.HasPrefix(string(out), before) {
				t.Errorf("oci=%v: fields before manifests changed:\n%s\n%s", oci, before, out)
			}
		}

		bad := []struct {
			name string
			blob []byte
			mt   image.MediaType
			keep []digest.Digest
		}{
			{"nothing kept", raw, desc.MediaType, nil},
			{"absent digest", raw, desc.MediaType, []digest.Digest{ds[0], digest.FromString("nope")}},
			{"manifest media type", raw, image.OCIManifest, ds[:1]},
			{"other index type", raw, otherIndexType(desc.MediaType), ds[:1]},
			{"no manifests", []byte(`{"schemaVersion":2}`), desc.MediaType, ds[:1]},
			{"schema 1", []byte(`{"schemaVersion":1,"manifests":[]}`), desc.MediaType, ds[:1]},
			{"duplicate key", []byte(`{"schemaVersion":2,"manifests":[],"manifests":[]}`), desc.MediaType, ds[:1]},
			{"trailing data", append(bytes.Clone(raw), []byte(" {}")...), desc.MediaType, ds[:1]},
			{"array", []byte(`[]`), desc.MediaType, ds[:1]},
		}
		for _, tc := range bad {
			if out, err := image.FilterIndex(tc.blob, tc.mt, tc.keep); err == nil {
				t.Errorf("oci=%v %s: accepted: %s", oci, tc.name, out)
			}
		}
	}
}

func keepRev(keep []digest.Digest) []digest.Digest {
	r := slices.Clone(keep)
	slices.Reverse(r)
	return r
}

func otherIndexType(mt image.MediaType) image.MediaType {
	if mt == image.OCIIndex {
		return image.DockerList
	}
	return image.OCIIndex
}
