package image

import (
	"fmt"
	"slices"
	"strings"
)

// Platform is an os/arch[/variant] triple in the normalised form containerd
// uses: arm64/v8 is arm64, arm without a variant is arm/v7.
type Platform struct {
	OS, Arch, Variant string
}

func (p Platform) String() string {
	if p.Variant != "" {
		return p.OS + "/" + p.Arch + "/" + p.Variant
	}
	return p.OS + "/" + p.Arch
}

// Known operating systems and architectures, as Go and the OCI image spec
// name them. The JSON Schema's platform pattern lists the same words.
var (
	knownOS   = []string{"aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js", "linux", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows"}
	knownArch = []string{"386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64", "ppc64le", "riscv64", "s390x", "wasm"}
	archHints = map[string]string{"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm/v7", "armel": "arm/v6", "i386": "386", "i686": "386"}
)

// ParsePlatform parses and normalises os/arch[/variant].
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return Platform{}, fmt.Errorf("platform %q: want os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm/v7", s)
	}
	p := Platform{OS: parts[0], Arch: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	if !slices.Contains(knownOS, p.OS) {
		return Platform{}, fmt.Errorf("platform %q: unknown operating system %q", s, p.OS)
	}
	if !slices.Contains(knownArch, p.Arch) {
		if hint, ok := archHints[p.Arch]; ok {
			return Platform{}, fmt.Errorf("platform %q: unknown architecture %q (did you mean %s/%s?)", s, p.Arch, p.OS, hint)
		}
		return Platform{}, fmt.Errorf("platform %q: unknown architecture %q", s, p.Arch)
	}
	if p.Variant != "" && !validVariant(p.Variant) {
		return Platform{}, fmt.Errorf("platform %q: variant %q is not of the form v<number>", s, p.Variant)
	}
	return p.Normalize(), nil
}

func validVariant(v string) bool {
	if len(v) < 2 || v[0] != 'v' {
		return false
	}
	for _, c := range v[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Normalize applies containerd's defaults so equal platforms compare equal.
func (p Platform) Normalize() Platform {
	switch {
	case p.Arch == "arm64" && p.Variant == "v8":
		p.Variant = ""
	case p.Arch == "arm" && p.Variant == "":
		p.Variant = "v7"
	case p.Arch == "amd64" && p.Variant == "v1":
		p.Variant = ""
	}
	return p
}

// PlatformSet is what a group asks for: a list of platforms, or every
// platform an index has.
type PlatformSet struct {
	All  bool
	List []Platform
}

func (s PlatformSet) Strings() []string {
	if s.All {
		return []string{"all"}
	}
	out := make([]string, len(s.List))
	for i, p := range s.List {
		out[i] = p.String()
	}
	return out
}

func (s PlatformSet) String() string { return strings.Join(s.Strings(), ", ") }

// Equal reports whether two sets ask for the same platforms in the same order
// (order matters: the first platform is the one docker load sees).
func (s PlatformSet) Equal(o PlatformSet) bool {
	return slices.Equal(s.Strings(), o.Strings())
}

// ParsePlatformSet parses a platforms array; "all" must stand alone.
func ParsePlatformSet(in []string) (PlatformSet, []error) {
	var set PlatformSet
	var errs []error
	if len(in) == 0 {
		return set, []error{fmt.Errorf("platforms is empty: list at least one, or [\"all\"]")}
	}
	seen := map[Platform]bool{}
	for _, s := range in {
		if s == "all" {
			if len(in) > 1 {
				errs = append(errs, fmt.Errorf(`platforms: "all" must stand alone`))
				continue
			}
			set.All = true
			continue
		}
		p, err := ParsePlatform(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[p] {
			errs = append(errs, fmt.Errorf("platform %q is listed twice", s))
			continue
		}
		seen[p] = true
		set.List = append(set.List, p)
	}
	return set, errs
}
