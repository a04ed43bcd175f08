package bundler

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
	"github.com/airgap-bundle/airgap-bundle/registry"
)

// Issue 20: a build of hundreds of images reads each image's manifests
// through a repository of its own, and containers/image gives each one an
// HTTP transport whose connections stay open until it is closed. The
// fetcher keeps at most MaxOpen of them open: the connections (one file
// descriptor each) do not grow with the number of images.
func TestFetcherBoundsOpenRepositories(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts the process's sockets in /proc")
	}
	testregistry.Isolate(t)
	reg := testregistry.Start(t, testregistry.Options{})
	const images = 3 * DefaultMaxOpenSources
	tops := make([]string, images)
	for i := range tops {
		tops[i] = reg.PushImage(t, fmt.Sprintf("many/app-%02d:v1", i), fmt.Sprintf("many-%02d", i))
	}
	spec := loadSpec(t, fmt.Sprintf("[registries.%q]\ninsecure = true\n\n[[group]]\nname = \"g\"\nimages = [\"%s/many/app-00:v1\"]\n", reg.Host, reg.Host))
	s := NewSession(spec, registry.Options{})
	defer s.Close()
	ctx := context.Background()
	port := reg.Host[strings.LastIndex(reg.Host, ":")+1:]
	before := connectionsTo(t, port) // the pushes' own, still open
	most := 0
	for i, top := range tops {
		ref, err := image.ParseReference(fmt.Sprintf("%s/many/app-%02d:v1", reg.Host, i), "")
		if err != nil {
			t.Fatal(err)
		}
		d := digest.Digest(top)
		if _, err := s.Manifest(ctx, ref, d, d); err != nil {
			t.Fatalf("image %d: %v", i, err)
		}
		most = max(most, connectionsTo(t, port)-before)
	}
	s.fetch.mu.Lock()
	open := len(s.fetch.srcs)
	s.fetch.mu.Unlock()
	// One connection per open repository, and none left of the closed
	// ones, but for one being torn down at the moment of a count (seen
	// once in CI: 17); without the bound there are one per image (48).
	const slack = 2
	if open > DefaultMaxOpenSources || most > DefaultMaxOpenSources+slack {
		t.Errorf("after reading %d images' manifests one at a time: %d repositories open (want at most %d), at most %d connections to the registry (want at most %d)",
			images, open, DefaultMaxOpenSources, most, DefaultMaxOpenSources+slack)
	}
	// A closed repository opens again when it is needed again.
	ref, _ := image.ParseReference(reg.Host+"/many/app-00:v1", "")
	if _, err := s.Manifest(ctx, ref, digest.Digest(tops[0]), digest.Digest(tops[0])); err != nil {
		t.Fatalf("reading the first image again: %v", err)
	}
}

// connectionsTo counts this process's established TCP connections to port
// on the loopback.
func connectionsTo(t *testing.T, port string) int {
	t.Helper()
	mine := map[string]bool{} // socket inodes of this process
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:[") {
			mine[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(":%04X", p)
	n := 0
	for _, table := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) > 9 && strings.HasSuffix(f[2], want) && f[3] == "01" && mine[f[9]] {
				n++
			}
		}
	}
	return n
}
