package bundler

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/archive"
)

// kinds lists the problem kinds of reports, by file name.
func kinds(reports []ArchiveReport) map[string][]archive.ProblemKind {
	out := map[string][]archive.ProblemKind{}
	for _, r := range reports {
		for _, p := range r.Problems {
			out[r.Name] = append(out[r.Name], p.Kind)
		}
	}
	return out
}

// A delta as build --since writes it verifies, on its own and with its
// BASE: the layers it leaves out are not missing blobs. A BASE that lacks
// them, or a damaged one, is named blob by blob.
func TestVerifyDelta(t *testing.T) {
	ctx := context.Background()
	w := newDeltaWorld(t)
	v1, v2 := w.version(t, 1), w.version(t, 2)
	base, full, deltaDir := t.TempDir(), t.TempDir(), t.TempDir()
	w.build(t, v1, base)
	dr := w.buildDelta(t, v2, v1, full, deltaDir)
	core := dr.Manifest.Archives[0]

	if r := VerifyArchive(ctx, filepath.Join(deltaDir, "core.delta.tar")); !r.OK() || r.Delta == nil || r.Delta.Of != "core.tar" || len(r.Delta.LeftOut) != len(core.FromBase) {
		t.Errorf("the delta archive on its own: %+v", r)
	}
	for _, b := range []string{"", base} {
		rep, err := VerifyDelta(ctx, deltaDir, b)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || len(rep.Files) != 2 || rep.Archives[0].Delta.BaseChecked != (b != "") {
			t.Errorf("--base %q: %v %+v", b, kinds(append(rep.Files, rep.Archives...)), rep.Archives)
		}
		if b != "" && (len(rep.Archives) != 2 || rep.Archives[1].Delta.Kind != DeltaUnchanged || rep.Archives[1].Path != filepath.Join(base, "extra.tar.zst")) {
			t.Errorf("the unchanged archive: %+v", rep.Archives)
		}
	}

	damaged := copyDir(t, base)
	corrupt(t, filepath.Join(damaged, "core.tar"), core.FromBase[0].Digest.Encoded())
	rep, err := VerifyDelta(ctx, deltaDir, damaged)
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(rep.Archives)["core.delta.tar"]; !slices.Equal(got, []archive.ProblemKind{KindBaseBlobCorrupt}) {
		t.Errorf("a damaged BASE blob: %v", kinds(rep.Archives))
	}
	rep, err = VerifyDelta(ctx, deltaDir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k := kinds(rep.Archives)
	if len(k["core.delta.tar"]) != len(core.FromBase) || k["core.delta.tar"][0] != KindBaseBlobMissing || !slices.Equal(k["extra.tar.zst"], []archive.ProblemKind{KindArchiveMissing}) {
		t.Errorf("an empty BASE: %v", k)
	}
}
