package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// The cache after a version bump holds both versions' blobs; prune
// --keep the new spec removes v1's own layer and keeps what v2 uses (a
// build --locked of v2 then works with the registry gone); prune refuses
// while the cache is held; du says what is there.
func TestCachePrune(t *testing.T) {
	_, spec, cacheDir := bumpedCache(t)
	before, err := cache.DiskUsage(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runSplit(t, "", "--json", "cache", "du", "--cache-dir", cacheDir, spec)
	var du cacheDUJSON
	if code != 0 || json.Unmarshal([]byte(out), &du) != nil || du.Blobs.Files != before.Blobs.Files || len(du.Lockfiles) != 1 || du.Lockfiles[0].Bytes == 0 || du.Lockfiles[0].Bytes >= du.Blobs.Bytes {
		t.Fatalf("cache du: exit %d %+v\n%s%s", code, du, out, stderr)
	}

	// Held by a build (any open of the cache): refused, nothing removed.
	held, err := cache.Open(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	if o, code := run(t, "cache", "prune", "--cache-dir", cacheDir, "--keep", spec); code != exitFailure || !strings.Contains(o, "held by a running build") {
		t.Errorf("prune of a held cache: exit %d\n%s", code, o)
	}
	if after, _ := cache.DiskUsage(cacheDir); after.Blobs != before.Blobs {
		t.Errorf("a refused prune removed blobs")
	}
	held.Close()
}

// bumpedCache builds app:v1 then app:v2 (the spec edited in place) into
// one cache, as a site's build machine does across a version bump.
func bumpedCache(t *testing.T) (reg *testregistry.Registry, spec, cacheDir string) {
	t.Helper()
	testregistry.Isolate(t)
	reg = testregistry.Start(t, testregistry.Options{})
	reg.PushImage(t, "app:v1", "app-1")
	reg.PushImage(t, "app:v2", "app-2")
	reg.PushImage(t, "tool:v1", "tool")
	reg.PushImage(t, "other:v1", "other")
	dir := t.TempDir()
	cacheDir = t.TempDir()
	spec = writeFile(t, dir, "bundle.toml", deltaSpec(reg.Host, "app:v1"))
	if out, code := run(t, "build", "--cache-dir", cacheDir, spec); code != 0 {
		t.Fatalf("build v1: %d\n%s", code, out)
	}
	writeFile(t, dir, "bundle.toml", deltaSpec(reg.Host, "app:v2"))
	if out, code := run(t, "build", "--cache-dir", cacheDir, spec); code != 0 {
		t.Fatalf("build v2: %d\n%s", code, out)
	}
	return reg, spec, cacheDir
}

func TestCachePruneKeeps(t *testing.T) {
	reg, spec, cacheDir := bumpedCache(t)
	before, _ := cache.DiskUsage(cacheDir)
	if o, code := run(t, "cache", "prune", "--cache-dir", cacheDir, "--keep", spec, "--dry-run"); code != 0 || !strings.Contains(o, "would remove") {
		t.Fatalf("prune --dry-run: exit %d\n%s", code, o)
	}
	if after, _ := cache.DiskUsage(cacheDir); after.Blobs != before.Blobs {
		t.Fatal("a dry run removed blobs")
	}
	o, code := run(t, "cache", "prune", "--cache-dir", cacheDir, "--keep", spec)
	after, _ := cache.DiskUsage(cacheDir)
	if code != 0 || after.Blobs.Files >= before.Blobs.Files {
		t.Fatalf("prune: exit %d, %d blobs before, %d after\n%s", code, before.Blobs.Files, after.Blobs.Files, o)
	}
	// What v2 uses is all there: a rebuild needs no registry.
	reg.Stop()
	if o, code := run(t, "build", "--locked", "--cache-dir", cacheDir, "--output", t.TempDir(), spec); code != 0 {
		t.Fatalf("build --locked after prune, registry stopped: exit %d\n%s", code, o)
	}
	if o, code := run(t, "cache", "prune", "--cache-dir", cacheDir); code != exitUsage {
		t.Errorf("prune without --keep or --older-than: exit %d\n%s", code, o)
	}
	if _, err := os.Stat(filepath.Join(cacheDir, "blobs", "sha256")); err != nil {
		t.Fatal(err)
	}
}
