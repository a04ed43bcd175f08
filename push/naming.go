package push

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/registry"
)

// Target is one --to: a registry host[:port] and an optional path prefix.
type Target struct {
	Host   string // host[:port]
	Prefix string // "" or "a/b", no slashes at the ends
}

func (t Target) String() string {
	if t.Prefix == "" {
		return t.Host
	}
	return t.Host + "/" + t.Prefix
}

// A repository path component, as the distribution spec has it.
var componentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

// ParseTarget reads "host[:port][/prefix]".
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSuffix(s, "/")
	if strings.Contains(s, "://") {
		return Target{}, fmt.Errorf("--to %q: give host[:port][/prefix], without a scheme (TLS settings come from the spec)", s)
	}
	host, prefix, _ := strings.Cut(s, "/")
	if host == "" {
		return Target{}, fmt.Errorf("--to %q: no registry host", s)
	}
	if _, err := name.NewRegistry(host, name.StrictValidation); err != nil || strings.ToLower(host) != host {
		return Target{}, fmt.Errorf("--to %q: %q is not a registry host[:port]", s, host)
	}
	if err := registry.CheckPort(host); err != nil {
		return Target{}, fmt.Errorf("--to %w", err)
	}
	if prefix != "" {
		for _, c := range strings.Split(prefix, "/") {
			if !componentRE.MatchString(c) {
				return Target{}, fmt.Errorf("--to %q: prefix component %q is not a valid repository path component (lowercase letters, digits, separators . _ -)", s, c)
			}
		}
	}
	return Target{Host: host, Prefix: prefix}, nil
}

// repoPath is where a source repository goes under a target: its path on
// its registry (docker.io's "library/" kept), or per host its path in the
// per-host layout (image.PerHostPath, the names serve answers too), after
// the target's prefix.
func repoPath(t Target, src image.Reference, perHost bool) string {
	path := src.Path()
	if perHost && src.Domain() != archive.ChartsDomain {
		path = src.PerHostPath()
	}
	if t.Prefix == "" {
		return path
	}
	return t.Prefix + "/" + path
}

// pathPrefix is what precedes a source host's repository paths under t:
// the prefix and, per host, the host component ("" for none).
func pathPrefix(t Target, sourceHost string, perHost bool) string {
	var parts []string
	if t.Prefix != "" {
		parts = append(parts, t.Prefix)
	}
	if perHost {
		parts = append(parts, image.HostComponent(sourceHost))
	}
	return strings.Join(parts, "/")
}
