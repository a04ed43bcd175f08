package e2e

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// partFiles lists the parts of the "parts" group build wrote.
func partFiles(t *testing.T, b built) []string {
	t.Helper()
	parts, err := filepath.Glob(filepath.Join(b.dir, "dist", "parts.part-*-of-*.tar"))
	if err != nil || len(parts) < 2 {
		t.Fatalf("the parts group was not written as parts: %v %v", parts, err)
	}
	for _, p := range parts {
		if !strings.HasSuffix(p, fmt.Sprintf("-of-%d.tar", len(parts))) {
			t.Fatalf("%s is not one of %d parts", p, len(parts))
		}
	}
	slices.Sort(parts)
	return parts
}

// Every part of a group over its max-size loads alone into every
// consumer, registry digests kept; together they hold every image once.
func TestPartsLoadAlone(t *testing.T) {
	b := buildBundle(t)
	parts := partFiles(t, b)
	for _, which := range []Containerd{Containerd16, Containerd2} {
		t.Run("ctr import "+which.String(), func(t *testing.T) {
			union := map[string]string{}
			for _, p := range parts {
				got := ctrImport(t, which, p, false)
				if len(got) == 0 {
					t.Errorf("%s: no image imported", p)
				}
				for name, d := range got {
					if _, twice := union[name]; twice {
						t.Errorf("%s is in two parts", name)
					}
					union[name] = d
				}
				ctrClean(t, which)
			}
			if !maps.Equal(union, b.parts) {
				t.Errorf("the parts hold %v, want %v", union, b.parts)
			}
		})
	}
	t.Run("k3s import", func(t *testing.T) {
		union := map[string]string{}
		for _, p := range parts {
			maps.Copy(union, k3sImport(t, Containerd2, p, K3sOpts{Clean: true}))
		}
		for name, d := range b.parts {
			if union[name] != d {
				t.Errorf("k3s: %s = %q, want %s", name, union[name], d)
			}
		}
	})
	t.Run("docker load", func(t *testing.T) {
		var all []string
		for _, p := range parts {
			loaded := dockerLoad(t, p)
			if len(loaded) == 0 {
				t.Errorf("%s: docker load loaded nothing", p)
			}
			all = append(all, loaded...)
			dockerRmi(t, loaded...)
		}
		for name := range b.parts {
			if !slices.Contains(all, familiar(name)) {
				t.Errorf("docker load of the parts: %s missing from %v", familiar(name), all)
			}
		}
	})
	t.Run("podman load", func(t *testing.T) {
		var all []string
		for _, p := range parts {
			loaded := podmanLoad(t, p)
			if len(loaded) == 0 {
				t.Errorf("%s: podman load loaded nothing", p)
			}
			all = append(all, loaded...)
		}
		for name := range b.parts {
			if !slices.ContainsFunc(all, func(s string) bool {
				return strings.TrimPrefix(s, "docker.io/") == strings.TrimPrefix(name, "docker.io/")
			}) {
				t.Errorf("podman load of the parts: %s missing from %v", name, all)
			}
		}
	})
}
