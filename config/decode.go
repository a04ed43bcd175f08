package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"

	"github.com/BurntSushi/toml"

	"github.com/airgap-bundle/airgap-bundle/internal/inputfile"
	"github.com/airgap-bundle/airgap-bundle/internal/tomlpos"
)

type rawSpec struct {
	DefaultRegistry *string                 `toml:"default-registry"`
	Platforms       *[]string               `toml:"platforms"`
	Index           *string                 `toml:"index"`
	OutputDir       *string                 `toml:"output-dir"`
	MaxSize         any                     `toml:"max-size"`
	Cache           *bool                   `toml:"cache"`
	Registries      map[string]*rawRegistry `toml:"registries"`
	Groups          []*rawGroup             `toml:"group"`
	Signatures      []*rawSignature         `toml:"signatures"`
}

type rawRegistry struct {
	Mirrors   []any    `toml:"mirrors"`
	Insecure  bool     `toml:"insecure"`
	CAFile    string   `toml:"ca-file"`
	Auth      *rawAuth `toml:"auth"`
	caFileSet bool
	// Decoded only to be refused with a useful message.
	Password any `toml:"password"`
	Username any `toml:"username"`
	Token    any `toml:"token"`
}

type rawAuth struct {
	Username    string `toml:"username"`
	UsernameEnv string `toml:"username-env"`
	PasswordEnv string `toml:"password-env"`
	File        string `toml:"file"`
	Helper      string `toml:"helper"`
	Password    any    `toml:"password"`
	Token       any    `toml:"token"`
	emptyKeys   []string
}

type rawGroup struct {
	Name       string        `toml:"name"`
	Archive    *string       `toml:"archive"`
	Platforms  *[]string     `toml:"platforms"`
	Index      *string       `toml:"index"`
	Images     []string      `toml:"images"`
	ImageLists []string      `toml:"image-lists"`
	Manifests  []string      `toml:"manifests"`
	Signatures *rawSignature `toml:"signatures"`
	CarrySigs  *bool         `toml:"carry-signatures"`
	MaxSize    any           `toml:"max-size"`
	SplitOver  *bool         `toml:"split-oversize"`
	Charts     []*rawChart   `toml:"charts"`
}

// Valid keys of each table, for "unknown key" messages.
var validKeys = map[string][]string{
	"":           {"default-registry", "platforms", "index", "output-dir", "max-size", "cache", "registries", "signatures", "group"},
	"registry":   {"mirrors", "insecure", "ca-file", "auth"},
	"auth":       {"username", "username-env", "password-env", "file", "helper"},
	"mirror":     {"location", "pull-from-mirror", "insecure"},
	"group":      {"name", "archive", "platforms", "index", "images", "image-lists", "manifests", "signatures", "carry-signatures", "max-size", "split-oversize", "charts"},
	"signatures": {"scope", "require", "key", "keys", "fulcio-ca", "oidc-issuer", "subject-email", "rekor-key", "rekor-keys", "verify-platforms"},
}

var (
	groupNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	archiveRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*\.(tar|tar\.gz|tgz|tar\.zst|tzst)$`)
	hostRE      = regexp.MustCompile(`^(localhost|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:]+\])(:[0-9]{1,5})?$`)
	envNameRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// BurntSushi reports type mismatches as plain errors of this form.
	typeErrRE  = regexp.MustCompile(`^toml: line (\d+) \(last key "(.*)"\): (.*)$`)
	locationRE = regexp.MustCompile(`^[^/\s]+(/[a-z0-9]+([._-][a-z0-9]+)*)*$`)
)

// secretHint is the one message for every literal secret in a spec.
const secretHint = "literal secrets are not accepted in a spec; use auth.password-env (with auth.username or auth.username-env), auth.file (a Docker config.json or containers auth.json) or auth.helper (a docker-credential-* helper)"

// Load is LoadContext without a deadline.
func Load(path string) (*Spec, error) {
	return LoadContext(context.Background(), path)
}

// LoadContext reads and checks the spec at path, and the image lists,
// manifests and keys it names. Every one of them must be a regular file
// within its cap (see inputfile); the reads stop when ctx ends.
func LoadContext(ctx context.Context, path string) (*Spec, error) {
	data, err := inputfile.Read(ctx, path, inputfile.MaxSpec)
	if err != nil {
		return nil, fmt.Errorf("reading spec: %w", err)
	}
	return ParseContext(ctx, data, path)
}

// LoadRegistries reads and checks the file at path for its registries
// table: a bundle spec, or a registries file, one whose only top-level key
// is registries. Where an archive is pushed there is no bundle spec, only
// the target registry's TLS settings and credentials to give; such a file
// gives them in the same table as a spec, checked the same way, and comes
// back with RegistriesOnly set and no groups.
func LoadRegistries(ctx context.Context, path string) (*Spec, error) {
	data, err := inputfile.Read(ctx, path, inputfile.MaxSpec)
	if err != nil {
		return nil, fmt.Errorf("reading spec: %w", err)
	}
	return parse(ctx, data, path, true)
}

// ParseRegistries is LoadRegistries of data read from path.
func ParseRegistries(data []byte, path string) (*Spec, error) {
	return parse(context.Background(), data, path, true)
}

// Parse is ParseContext without a deadline.
func Parse(data []byte, path string) (*Spec, error) {
	return ParseContext(context.Background(), data, path)
}

// ParseContext checks a spec read from path; files it names are read
// relative to path's directory until ctx ends. All problems are returned
// together as one error (a *multierror.Error of *Error).
func ParseContext(ctx context.Context, data []byte, path string) (*Spec, error) {
	return parse(ctx, data, path, false)
}

// parse checks a spec, or with registriesFile also a registries file.
func parse(ctx context.Context, data []byte, path string, registriesFile bool) (*Spec, error) {
	var raw rawSpec
	var errs errorList
	var generic map[string]any
	if _, err := toml.Decode(string(data), &generic); err == nil {
		checkTypes(generic, tomlpos.New(string(data)), path, &errs)
		if err := errs.err(); err != nil {
			return nil, err
		}
	}
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		if pe, ok := asParseError(err); ok {
			errs.add(syntaxPos(string(data), path, pe), "%s", pe.Message)
		} else if m := typeErrRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			errs.add(errdefs.Pos{File: path, Line: line}, "%s: %s", m[2], m[3])
		} else {
			errs.add(errdefs.Pos{File: path}, "%v", err)
		}
		return nil, errs.err()
	}
	d := &decoder{ctx: ctx, path: path, dir: filepath.Dir(path), loc: tomlpos.New(string(data)), errs: &errs, registriesFile: registriesFile}
	d.unknownKeys(md.Undecoded())
	for h, r := range raw.Registries {
		r.caFileSet = md.IsDefined("registries", h, "ca-file")
		if a := r.Auth; a != nil {
			for k, v := range map[string]string{"username": a.Username, "username-env": a.UsernameEnv, "password-env": a.PasswordEnv, "file": a.File, "helper": a.Helper} {
				if v == "" && md.IsDefined("registries", h, "auth", k) {
					a.emptyKeys = append(a.emptyKeys, k)
				}
			}
			sort.Strings(a.emptyKeys)
		}
	}
	spec := d.spec(&raw)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return spec, nil
}

type decoder struct {
	ctx  context.Context // ends the reads of the files the spec names
	path string
	dir  string
	loc  *tomlpos.Locator
	errs *errorList
	// registriesFile accepts a file with only a registries table.
	registriesFile bool
	// defaultRegistry is the spec's, once decoded: scopes are read
	// against it as image references are.
	defaultRegistry string
}

func (d *decoder) pos(path ...any) errdefs.Pos {
	return errdefs.Pos{File: d.path, Line: d.loc.Line(path...)}
}

func (d *decoder) add(path []any, format string, args ...any) {
	d.errs.add(d.pos(path...), format, args...)
}

func (d *decoder) unknownKeys(keys []toml.Key) {
	for _, k := range keys {
		table := ""
		switch {
		case len(k) == 3 && k[0] == "registries":
			table = "registry"
		case len(k) == 4 && k[0] == "registries" && k[2] == "auth":
			table = "auth"
		case len(k) == 2 && k[0] == "group":
			table = "group"
		case len(k) == 2 && k[0] == "signatures":
			d.errs.add(errdefs.Pos{File: d.path, Line: d.findArrayKey("signatures", k[1])}, "unknown key %q in [[signatures]] (valid: %s)", k[1], strings.Join(validKeys["signatures"], ", "))
			continue
		case len(k) == 3 && k[0] == "group" && k[1] == "charts":
			d.errs.add(errdefs.Pos{File: d.path, Line: d.findGroupKey("charts")}, "unknown key %q in a group's [[group.charts]] (valid: %s)", k[2], strings.Join(validKeys["chart"], ", "))
			continue
		case len(k) == 3 && k[0] == "group" && k[1] == "signatures":
			d.errs.add(errdefs.Pos{File: d.path, Line: d.findGroupKey("signatures")}, "unknown key %q in a group's signatures (valid: %s)", k[2], strings.Join(validKeys["signatures"], ", "))
			continue
		case len(k) == 1:
		default:
			continue // below an unknown key: that key is already reported
		}
		last := k[len(k)-1]
		path := make([]any, len(k))
		for i, s := range k {
			path[i] = s
		}
		if table == "group" {
			d.errs.add(errdefs.Pos{File: d.path, Line: d.findGroupKey(last)}, "unknown key %q in [[group]] (valid: %s)", last, strings.Join(validKeys[table], ", "))
			continue
		}
		where := ""
		if table != "" {
			where = " in " + strings.Join(k[:len(k)-1], ".")
		}
		d.add(path, "unknown key %q%s (valid: %s)", last, where, strings.Join(validKeys[table], ", "))
	}
}

// findGroupKey finds the first group that has key: BurntSushi's key paths
// do not carry the array index.
func (d *decoder) findGroupKey(key string) int { return d.findArrayKey("group", key) }

// findArrayKey finds the first entry of the array of tables that has key.
func (d *decoder) findArrayKey(array, key string) int {
	for i := 0; ; i++ {
		if _, ok := d.loc.Exact(array, i); !ok {
			break
		}
		if line, ok := d.loc.Exact(array, i, key); ok {
			return line
		}
	}
	return d.loc.Line(array)
}

func (d *decoder) spec(raw *rawSpec) *Spec {
	s := &Spec{
		Path:            d.path,
		Dir:             d.dir,
		DefaultRegistry: DefaultRegistry,
		Platforms:       DefaultPlatforms,
		Index:           image.IndexOriginal,
		OutputDir:       filepath.Join(d.dir, DefaultOutputDir),
		Registries:      map[string]*Registry{},
	}
	if raw.DefaultRegistry != nil {
		if !hostRE.MatchString(*raw.DefaultRegistry) {
			d.add([]any{"default-registry"}, "default-registry %q is not a registry host[:port]", *raw.DefaultRegistry)
		} else {
			s.DefaultRegistry = *raw.DefaultRegistry
		}
	}
	d.defaultRegistry = s.DefaultRegistry
	if raw.Platforms != nil {
		set, errs := image.ParsePlatformSet(*raw.Platforms)
		for _, e := range errs {
			d.add([]any{"platforms"}, "%v", e)
		}
		s.Platforms = set
	}
	if raw.Index != nil {
		s.Index = d.indexMode(*raw.Index, "index")
	}
	if raw.OutputDir != nil {
		if *raw.OutputDir == "" {
			d.add([]any{"output-dir"}, "output-dir is empty")
		} else {
			s.OutputDir = d.relPath(*raw.OutputDir)
		}
	}
	if raw.MaxSize != nil {
		n, err := ParseSize(raw.MaxSize)
		if err != nil {
			d.add([]any{"max-size"}, "max-size: %v", err)
		}
		s.MaxSize = n
	}
	s.NoCache = raw.Cache != nil && !*raw.Cache

	hosts := make([]string, 0, len(raw.Registries))
	for h := range raw.Registries {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		if r := d.registry(h, raw.Registries[h]); r != nil {
			s.Registries[h] = r
		}
	}

	// Scopes are told apart by what they name: "busybox" and
	// "docker.io/library/busybox" are one scope written twice.
	scopes := map[string]int{}
	for i, rs := range raw.Signatures {
		r := d.signature(rs, []any{"signatures", i}, fmt.Sprintf("signatures #%d", i+1), true)
		if r == nil {
			continue
		}
		key := ""
		if len(r.Names) > 0 {
			key = r.Names[0]
		}
		if first, dup := scopes[key]; dup {
			what := "an unscoped entry (the default)"
			if r.Scope != "" {
				what = fmt.Sprintf("scope %q", r.Scope)
				if key != r.Scope {
					what += " (" + key + ")"
				}
			}
			d.add([]any{"signatures", i}, "signatures #%d: %s is also given at line %d; one entry per scope", i+1, what, d.loc.Line("signatures", first))
			continue
		}
		scopes[key] = i
		s.Signatures = append(s.Signatures, r)
	}

	if d.registriesFile && raw.onlyRegistries() {
		s.RegistriesOnly = true
		return s
	}
	if len(raw.Groups) == 0 {
		d.errs.add(errdefs.Pos{File: d.path}, `no [[group]]: a spec needs at least one group of images (a file with nothing but [registries."HOST"] tables is for push --spec)`)
	}
	names := map[string]int{}
	archives := map[string]int{}
	for i, rg := range raw.Groups {
		g := d.group(i, rg, s)
		if g == nil {
			continue
		}
		if first, dup := names[g.Name]; dup {
			d.add([]any{"group", i, "name"}, "group name %q is used twice (first at line %d)", g.Name, d.loc.Line("group", first, "name"))
			continue
		}
		names[g.Name] = i
		if first, dup := archives[g.Archive]; dup {
			d.add([]any{"group", i, "archive"}, "group %q: archive %q is also written by group %q", g.Name, g.Archive, raw.Groups[first].Name)
		} else {
			archives[g.Archive] = i
		}
		s.Groups = append(s.Groups, g)
	}
	return s
}

// onlyRegistries reports whether a registries table is all the file
// holds. Unknown top-level keys are reported on their own.
func (raw *rawSpec) onlyRegistries() bool {
	return len(raw.Registries) > 0 && raw.Groups == nil && raw.Signatures == nil &&
		raw.DefaultRegistry == nil && raw.Platforms == nil && raw.Index == nil && raw.OutputDir == nil && raw.Cache == nil
}

func (d *decoder) relPath(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(d.dir, p)
}

func (d *decoder) indexMode(v string, path ...any) image.IndexMode {
	m, err := image.ParseIndexMode(v)
	if err != nil {
		d.add(path, "%v", err)
		return image.IndexOriginal
	}
	return m
}

func (d *decoder) registry(host string, raw *rawRegistry) *Registry {
	p := []any{"registries", host}
	if !hostRE.MatchString(host) {
		d.add(p, "registries.%q: not a registry host[:port] (no scheme, no path)", host)
		return nil
	}
	r := &Registry{Host: host, Insecure: raw.Insecure, Pos: d.pos(p...)}
	for _, k := range []struct {
		name string
		v    any
	}{{"password", raw.Password}, {"token", raw.Token}, {"username", raw.Username}} {
		if k.v != nil {
			d.add(append(p, k.name), "registries.%q.%s: %s", host, k.name, secretHint)
		}
	}
	if md := raw.CAFile; md == "" && raw.caFileSet {
		d.add(append(p, "ca-file"), "registries.%q.ca-file is empty", host)
	}
	if raw.CAFile != "" {
		r.CAFile = d.relPath(raw.CAFile)
		if err := inputfile.Check(r.CAFile, inputfile.MaxSmall); err != nil {
			d.add(append(p, "ca-file"), "registries.%q.ca-file: %s: %v", host, r.CAFile, unwrapPathError(err))
		}
	}
	for i, m := range raw.Mirrors {
		if mm, ok := d.mirror(host, i, m); ok {
			if mm.Location == host {
				d.add(append(p, "mirrors", i), "registries.%q: a registry cannot be its own mirror", host)
				continue
			}
			r.Mirrors = append(r.Mirrors, mm)
		}
	}
	if raw.Auth != nil {
		r.Auth = d.auth(host, raw.Auth)
	}
	return r
}

func (d *decoder) mirror(host string, i int, v any) (Mirror, bool) {
	p := []any{"registries", host, "mirrors", i}
	m := Mirror{PullFromMirror: PullAll}
	switch t := v.(type) {
	case string:
		m.Location = t
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		ok := true
		for _, k := range keys {
			val := t[k]
			switch k {
			case "location":
				s, isStr := val.(string)
				if !isStr {
					d.add(append(p, k), "registries.%q.mirrors[%d].location must be a string", host, i)
					ok = false
				}
				m.Location = s
			case "pull-from-mirror":
				s, isStr := val.(string)
				if !isStr || !slices.Contains([]string{PullAll, PullDigestOnly, PullTagOnly}, s) {
					d.add(append(p, k), "registries.%q.mirrors[%d].pull-from-mirror: want %q, %q or %q", host, i, PullAll, PullDigestOnly, PullTagOnly)
					ok = false
				}
				m.PullFromMirror = s
			case "insecure":
				b, isBool := val.(bool)
				if !isBool {
					d.add(append(p, k), "registries.%q.mirrors[%d].insecure must be true or false", host, i)
					ok = false
				}
				m.Insecure = b
			default:
				d.add(append(p, k), "unknown key %q in a mirror of %q (valid: %s)", k, host, strings.Join(validKeys["mirror"], ", "))
				ok = false
			}
		}
		if !ok {
			return m, false
		}
		if m.Location == "" {
			d.add(p, "registries.%q.mirrors[%d]: location is required", host, i)
			return m, false
		}
	default:
		d.add(p, "registries.%q.mirrors[%d]: want a location string or a table with location", host, i)
		return m, false
	}
	if !locationRE.MatchString(m.Location) || !hostRE.MatchString(m.Host()) || strings.Contains(m.Location, "://") {
		d.add(p, "registries.%q: mirror %q is not host[:port][/path] (no scheme)", host, m.Location)
		return m, false
	}
	return m, true
}

func (d *decoder) auth(host string, raw *rawAuth) *Auth {
	p := []any{"registries", host, "auth"}
	bad := false
	for _, k := range raw.emptyKeys {
		d.add(append(p, k), "registries.%q.auth.%s is empty", host, k)
		bad = true
	}
	if raw.Password != nil || raw.Token != nil {
		key := "password"
		if raw.Password == nil {
			key = "token"
		}
		d.add(append(p, key), "registries.%q.auth.%s: %s", host, key, secretHint)
		bad = true
	}
	a := &Auth{Username: raw.Username, UsernameEnv: raw.UsernameEnv, PasswordEnv: raw.PasswordEnv, File: raw.File, Helper: raw.Helper}
	sources := 0
	for _, s := range []string{a.PasswordEnv, a.File, a.Helper} {
		if s != "" {
			sources++
		}
	}
	switch {
	case bad:
	case sources == 0:
		d.add(p, "registries.%q.auth: name a source: password-env (with username or username-env), file or helper", host)
	case sources > 1:
		d.add(p, "registries.%q.auth: password-env, file and helper exclude each other; keep one", host)
	case a.PasswordEnv != "":
		if (a.Username == "") == (a.UsernameEnv == "") {
			d.add(p, "registries.%q.auth: password-env needs exactly one of username or username-env", host)
		}
		for _, e := range []struct{ key, v string }{{"password-env", a.PasswordEnv}, {"username-env", a.UsernameEnv}} {
			if e.v != "" && !envNameRE.MatchString(e.v) {
				d.add(append(p, e.key), "registries.%q.auth.%s: %q is not an environment variable name", host, e.key, e.v)
			}
		}
	default:
		if a.Username != "" || a.UsernameEnv != "" {
			d.add(p, "registries.%q.auth: username goes with password-env only", host)
		}
		if a.Helper != "" && strings.ContainsAny(a.Helper, `/\ `) {
			d.add(append(p, "helper"), "registries.%q.auth.helper: %q: give the helper's suffix, e.g. \"ecr-login\" for docker-credential-ecr-login", host, a.Helper)
		}
		if a.File != "" {
			a.File = d.expandHome(a.File)
		}
	}
	return a
}

// expandHome resolves ~/ and relative auth file paths. The file itself is
// read only when credentials are needed, so a spec validates on a machine
// without the secret mounted.
func (d *decoder) expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	return d.relPath(p)
}

func (d *decoder) group(i int, raw *rawGroup, s *Spec) *Group {
	p := []any{"group", i}
	g := &Group{Name: raw.Name, Platforms: s.Platforms, Index: s.Index, Pos: d.pos(p...)}
	label := fmt.Sprintf("group %q", raw.Name)
	switch {
	case raw.Name == "":
		d.add(p, "group #%d has no name", i+1)
		label = fmt.Sprintf("group #%d", i+1)
	case !groupNameRE.MatchString(raw.Name):
		d.add(append(p, "name"), "group name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", raw.Name)
	}
	g.Archive = raw.Name + ".tar"
	if raw.Archive != nil {
		g.Archive = *raw.Archive
	}
	if !archiveRE.MatchString(g.Archive) {
		d.add(append(p, "archive"), "%s: archive %q must be a plain file name ending in .tar, .tar.gz, .tgz, .tar.zst or .tzst", label, g.Archive)
	}
	if raw.Platforms != nil {
		set, errs := image.ParsePlatformSet(*raw.Platforms)
		for _, e := range errs {
			d.add(append(p, "platforms"), "%s: %v", label, e)
		}
		g.Platforms = set
	}
	if raw.Index != nil {
		g.Index = d.indexMode(*raw.Index, append(p, "index")...)
	}
	g.MaxSize = s.MaxSize
	if raw.MaxSize != nil {
		n, err := ParseSize(raw.MaxSize)
		if err != nil {
			d.add(append(p, "max-size"), "%s: max-size: %v", label, err)
		}
		g.MaxSize = n
	}
	if raw.SplitOver != nil {
		g.SplitOversize = *raw.SplitOver
		if g.SplitOversize && g.MaxSize == 0 {
			d.add(append(p, "split-oversize"), "%s: split-oversize goes with a max-size (here or at the top level)", label)
		}
	}
	if raw.Signatures != nil {
		if r := d.signature(raw.Signatures, append(slices.Clip(p), "signatures"), label+" signatures", false); r != nil {
			r.Group = raw.Name
			g.Signatures = r
		}
	}

	seen := map[string]bool{}
	addImage := func(img Image) {
		if key := img.Ref.String(); !seen[key] {
			seen[key] = true
			g.Images = append(g.Images, img)
		}
	}
	for j, w := range raw.Images {
		ref, err := image.ParseReference(w, s.DefaultRegistry)
		if err != nil {
			d.add(append(p, "images", j), "%s: %v", label, err)
			continue
		}
		addImage(Image{Ref: ref, Pos: d.pos(append(p, "images", j)...)})
	}
	for j, l := range raw.ImageLists {
		file := d.relPath(l)
		data, err := inputfile.Read(d.ctx, file, inputfile.MaxImageList)
		if err != nil {
			d.add(append(p, "image-lists", j), "%s: image list %s: %v", label, file, unwrapPathError(err))
			continue
		}
		before := d.errs.count()
		imgs := parseImageList(data, file, s.DefaultRegistry, d.errs)
		for _, img := range imgs {
			addImage(img)
		}
		if len(imgs) == 0 && d.errs.count() == before {
			d.add(append(p, "image-lists", j), "%s: image list %s has no images", label, file)
		}
	}
	before := d.errs.count()
	for _, m := range d.manifestFiles(append(p, "manifests"), label, raw.Manifests) {
		file := m.file
		data, err := inputfile.Read(d.ctx, file, inputfile.MaxManifest)
		if err != nil {
			d.add(append(p, "manifests", m.glob), "%s: manifest %s: %v", label, file, unwrapPathError(err))
			continue
		}
		for _, img := range parseManifests(data, file, s.DefaultRegistry, d.errs) {
			addImage(img)
		}
	}
	d.charts(p, label, raw.Charts, g, addImage)
	if raw.CarrySigs != nil {
		g.CarrySignatures = *raw.CarrySigs
	} else {
		for _, img := range g.Images {
			for _, r := range s.SignatureRequirements(g, img.Ref) {
				g.CarrySignatures = g.CarrySignatures || r.NeedsSignatures()
			}
		}
	}
	switch {
	case len(raw.Images) == 0 && len(raw.ImageLists) == 0 && len(raw.Manifests) == 0 && len(raw.Charts) == 0:
		d.add(p, "%s has no images: add images = [...], image-lists = [...], manifests = [...] or [[group.charts]]", label)
	case len(g.Images) == 0 && len(raw.Manifests) > 0 && d.errs.count() == before:
		d.add(append(p, "manifests"), "%s has no images: its manifests hold no workload with a container image", label)
	}
	return g
}

// manifestFiles expands a group's manifest globs, relative to the spec,
// into the files they match: each file once, in the order of the globs,
// directories skipped. A glob that matches no file is an error.
func (d *decoder) manifestFiles(p []any, label string, globs []string) []manifestFile {
	var files []manifestFile
	seen := map[string]bool{}
	for j, g := range globs {
		at := append(slices.Clip(p), j)
		if g == "" {
			d.add(at, "%s: manifests[%d] is empty", label, j)
			continue
		}
		matches, err := filepath.Glob(d.relPath(g))
		if err != nil {
			d.add(at, "%s: manifests glob %q: %v", label, g, err)
			continue
		}
		n := 0
		for _, m := range matches {
			if st, err := os.Stat(m); err != nil || st.IsDir() {
				continue
			}
			n++
			if !seen[m] {
				seen[m] = true
				files = append(files, manifestFile{file: m, glob: j})
			}
		}
		if n == 0 {
			d.add(at, "%s: manifests glob %q matches no file", label, g)
		}
	}
	return files
}

type manifestFile struct {
	file string
	glob int // index of the first glob that matched it
}

// asParseError finds BurntSushi's positioned error, which comes as a value
// from the parser and as a pointer from type checks.
func asParseError(err error) (toml.ParseError, bool) {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return pe, true
	}
	var pp *toml.ParseError
	if errors.As(err, &pp) && pp != nil {
		pe = *pp
		if pe.Position.Line == 0 {
			pe.Position.Line = pe.Line //nolint:staticcheck // older field, still the only one set on some paths
		}
		return pe, true
	}
	return pe, false
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
