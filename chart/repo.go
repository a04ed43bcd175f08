package chart

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"go.yaml.in/yaml/v3"
)

// MaxIndex bounds a repository's index.yaml: big public repositories
// serve tens of MB.
const MaxIndex = 128 << 20

// Index is what a chart repository's index.yaml says of its charts.
type Index struct {
	Entries map[string][]IndexEntry `yaml:"entries"`
}

// IndexEntry is one version of one chart.
type IndexEntry struct {
	Name    string   `yaml:"name"`
	Version string   `yaml:"version"`
	URLs    []string `yaml:"urls"`
	// Digest is the sha256 (hex) of the .tgz, when the index gives it.
	Digest string `yaml:"digest"`
}

// ParseIndex decodes an index.yaml. Entries without a version or URL are
// dropped: they cannot be installed by helm either.
func ParseIndex(data []byte) (*Index, error) {
	var idx Index
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&idx); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("index.yaml: %v", err)
	}
	for name, es := range idx.Entries {
		kept := es[:0]
		for _, e := range es {
			if e.Version != "" && len(e.URLs) > 0 {
				kept = append(kept, e)
			}
		}
		idx.Entries[name] = kept
	}
	return &idx, nil
}

// ErrNoVersion marks a constraint no published version satisfies.
var ErrNoVersion = errors.New("no version matches")

// ChooseVersion picks the newest of versions that satisfies constraint,
// as helm does: "" means the newest release (no pre-release); a
// constraint is Masterminds semver's (the library Helm uses), so
// "1.2.3", "~1.2", "^1", ">=1.2 <2" all work, and pre-releases match only
// a constraint that names one. Versions that are not semver are skipped.
func ChooseVersion(constraint string, versions []string) (string, error) {
	c := constraint
	if c == "" {
		c = "*"
	}
	cons, err := semver.NewConstraint(c)
	if err != nil {
		return "", fmt.Errorf("version %q is neither a version nor a semver constraint: %v", constraint, err)
	}
	type cand struct {
		v   *semver.Version
		raw string
	}
	var cs []cand
	for _, raw := range versions {
		v, err := semver.NewVersion(raw)
		if err != nil {
			continue
		}
		if cons.Check(v) {
			cs = append(cs, cand{v, raw})
		}
	}
	if len(cs) == 0 {
		newest := ""
		if all := sortedVersions(versions); len(all) > 0 {
			newest = "; the newest published is " + all[len(all)-1]
		}
		if constraint == "" {
			return "", fmt.Errorf("%w: no release (only pre-releases, or none)%s", ErrNoVersion, newest)
		}
		return "", fmt.Errorf("%w %q%s", ErrNoVersion, constraint, newest)
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].v.LessThan(cs[j].v) })
	return cs[len(cs)-1].raw, nil
}

func sortedVersions(raw []string) []string {
	var vs []*semver.Version
	for _, r := range raw {
		if v, err := semver.NewVersion(r); err == nil {
			vs = append(vs, v)
		}
	}
	sort.Sort(semver.Collection(vs))
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Original()
	}
	return out
}

// entry finds a chart's version in the index.
func (idx *Index) entry(name, constraint string) (*IndexEntry, error) {
	es := idx.Entries[name]
	if len(es) == 0 {
		return nil, fmt.Errorf("the repository has no chart %q", name)
	}
	versions := make([]string, len(es))
	for i, e := range es {
		versions[i] = e.Version
	}
	v, err := ChooseVersion(constraint, versions)
	if err != nil {
		return nil, err
	}
	for i := range es {
		if es[i].Version == v {
			return &es[i], nil
		}
	}
	return nil, fmt.Errorf("version %s vanished from the index", v)
}

// resolveURL makes an index entry's URL absolute: helm resolves a relative
// one against the repository URL (as a directory).
func resolveURL(repo, ref string) (string, error) {
	base, err := url.Parse(strings.TrimSuffix(repo, "/") + "/")
	if err != nil {
		return "", err
	}
	u, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("chart URL %q: %v", ref, err)
	}
	abs := base.ResolveReference(u)
	if abs.Scheme != "https" && abs.Scheme != "http" {
		return "", fmt.Errorf("chart URL %q: not http(s)", ref)
	}
	return abs.String(), nil
}
