package delta

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// sampleManifest is a delta.json as build --since writes one: a changed
// archive with its delta and blobs from BASE, an unchanged one, a removed
// group.
func sampleManifest() *Manifest {
	hex := strings.Repeat("ab", 32)
	return &Manifest{
		Version:        Version,
		Base:           Base{Source: "git:v1.4.0:bundle.lock", LockfileSHA256: strings.Repeat("01", 32)},
		LockfileSHA256: strings.Repeat("23", 32),
		Archives: []Archive{
			{Group: "core", Name: "core.tar.zst", Size: 4096, SHA256: hex,
				Delta: &File{Name: "core.delta.tar.zst", Size: 1024, SHA256: strings.Repeat("cd", 32)},
				FromBase: []Blob{
					{Digest: digest.FromString("layer b"), Size: 7, Where: `group "core"`},
					{Digest: digest.FromString("layer a"), Size: 7, Where: `group "extra"`},
				}},
			{Group: "extra", Name: "extra.tar", Size: 2048, SHA256: strings.Repeat("ef", 32), Unchanged: true},
		},
		RemovedGroups: []string{"old"},
	}
}

// isPlainFileName is what "a plain file name" means to a delta directory,
// said independently of plainName: one path element that stays in its
// directory, and fits on a SHA256SUMS line.
func isPlainFileName(n string) bool {
	return n != "" && filepath.IsLocal(n) && filepath.Base(n) == n && !strings.ContainsAny(n, "/\\\x00\n\r") && n != "." && n != ".."
}

// Parse never panics; what it refuses is ErrDelta naming the file; what it
// accepts has plain file names only, and encodes to bytes that parse back
// to the same value and encode again to the same bytes.
func FuzzParse(f *testing.F) {
	good, err := sampleManifest().Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	for _, r := range [][2]string{
		{`"version": 1`, `"version": 2`},
		{`"name": "core.tar.zst"`, `"name": "../core.tar.zst"`},
		{`"name": "core.delta.tar.zst"`, `"name": "core.tar.zst"`},
		{`"name": "extra.tar"`, `"name": "a\nb.tar"`},
		{`"unchanged": true`, `"unchanged": true, "delta": {"name": "x", "size": 1, "sha256": "` + strings.Repeat("0", 64) + `"}`},
		{`"removed-groups"`, `"extra-field"`},
		{`"size": 4096`, `"size": -1`},
		{`"sha256"`, `"SHA256"`},
	} {
		f.Add(bytes.Replace(good, []byte(r[0]), []byte(r[1]), 1))
	}
	f.Add(append(bytes.Clone(good), good...))
	f.Add(good[:len(good)/2])
	empty := bytes.Replace(good, []byte("\"removed-groups\": [\n    \"old\"\n  ]"), []byte(`"removed-groups": []`), 1)
	if bytes.Equal(empty, good) {
		f.Fatal("the sample's removed-groups is not where the seed expects it")
	}
	f.Add(empty)
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"version": 1, "archives": null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data, "dir/delta.json")
		if err != nil {
			if !errors.Is(err, ErrDelta) || !strings.Contains(err.Error(), "dir/delta.json") {
				t.Fatalf("refusal is not ErrDelta naming the file: %v", err)
			}
			return
		}
		for _, a := range m.Archives {
			if !isPlainFileName(a.Name) {
				t.Fatalf("accepted archive name %q", a.Name)
			}
			if a.Delta != nil && !isPlainFileName(a.Delta.Name) {
				t.Fatalf("accepted delta name %q", a.Delta.Name)
			}
		}
		out, err := m.Encode() // sorts m's from-base lists in place
		if err != nil {
			t.Fatalf("encoding an accepted delta.json: %v", err)
		}
		m2, err := Parse(out, "again.json")
		if err != nil {
			t.Fatalf("re-parsing the encoding: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-parsed value differs:\n%#v\n%#v", m, m2)
		}
		if out2, err := m2.Encode(); err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("encoding is not stable (%v):\n%s\n---\n%s", err, out, out2)
		}
	})
}

// ParseInventory never panics; what it refuses names the file; what it
// accepts holds sha256 digests only, each once, and encodes to bytes that
// parse back to the same holdings.
func FuzzParseInventory(f *testing.F) {
	inv := &Inventory{Version: InventoryVersion, Source: "registry registry.internal:5000/site", Blobs: []Blob{
		{Digest: digest.FromString("b"), Size: 3, Where: "registry registry.internal:5000"},
		{Digest: digest.FromString("a"), Size: 0, Where: "core.tar"},
	}}
	good, err := inv.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	for _, r := range [][2]string{
		{`"version": 1`, `"version": 0`},
		{`"digest": "sha256:`, `"digest": "sha512:`},
		{`"size": 3`, `"size": -3`},
		{`"where"`, `"wherever"`},
		{`"source": "registry registry.internal:5000/site"`, `"source": ""`},
	} {
		f.Add(bytes.Replace(good, []byte(r[0]), []byte(r[1]), 1))
	}
	f.Add(append(bytes.Clone(good), `{}`...))
	f.Add([]byte(`{"version": 1, "source": "s", "blobs": null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseInventory(data, "site/have.json")
		if err != nil {
			if !strings.Contains(err.Error(), "site/have.json") {
				t.Fatalf("refusal does not name the file: %v", err)
			}
			return
		}
		seen := map[digest.Digest]bool{}
		for _, b := range got.Blobs {
			if b.Digest.Validate() != nil || b.Digest.Algorithm() != digest.SHA256 || b.Size < 0 || seen[b.Digest] {
				t.Fatalf("accepted blob %+v", b)
			}
			seen[b.Digest] = true
		}
		out, err := got.Encode()
		if err != nil {
			t.Fatalf("encoding an accepted inventory: %v", err)
		}
		again, err := ParseInventory(out, "again.json")
		if err != nil {
			t.Fatalf("re-parsing the encoding: %v\n%s", err, out)
		}
		sorted := *got
		sorted.Blobs = slices.Clone(got.Blobs)
		if sorted.Blobs == nil {
			sorted.Blobs = []Blob{}
		}
		slices.SortFunc(sorted.Blobs, func(a, b Blob) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
		if !reflect.DeepEqual(&sorted, again) {
			t.Fatalf("re-parsed inventory differs:\n%#v\n%#v", got, again)
		}
		if out2, err := again.Encode(); err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("encoding is not stable (%v):\n%s\n---\n%s", err, out, out2)
		}
	})
}
