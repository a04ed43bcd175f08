// Package registry turns a spec's registry settings into one hermetic
// containers/image SystemContext: mirrors, TLS and credentials come from the
// spec (and, for credentials, the user's standard locations when the spec is
// silent), never from the host's /etc/containers or /etc/docker files, so the
// same spec resolves the same way on every machine.
package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/types"

	spec "github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/internal/atomicfile"
	"github.com/airgap-bundle/airgap-bundle/internal/inputfile"
	"github.com/airgap-bundle/airgap-bundle/internal/logs"
)

// Env owns the generated configuration of one run. Close removes it.
type Env struct {
	Sys *types.SystemContext
	dir string

	mu         sync.Mutex
	transports map[string]http.RoundTripper // for OpenBlobAt, by host/repository
	bases      map[string]*http.Transport   // their connections, one pool per host
	// exact lists the hosts registries.conf pins to their own (default)
	// settings, so that a bare-host key does not reach them; see Check.
	exact map[string]bool
	spec  *spec.Spec
}

// Options tune New.
type Options struct {
	UserAgent string
	Logger    *slog.Logger
	// Policy bounds and retries every request of the run.
	Policy Policy
	// Hosts are registries the run will contact besides those the spec
	// declares (the registries of its images). Their credentials come from
	// the standard locations.
	Hosts []string
}

// ErrCredentials marks a credential source that could not be read.
var ErrCredentials = errors.New("credentials")

// New writes registries.conf, per-host CA directories and an auth file into
// a private directory of this run and returns a SystemContext that reads only
// those. The auth file holds the credentials this run needs, resolved once
// through containers/image's own lookup (so credential helpers work); it is
// created 0600 in a 0700 directory of the user's own (see PrivateDir; never
// the shared temporary directory), and removed by Close, or by a later run
// if this one is killed before it can close.
func New(s *spec.Spec, opts Options) (_ *Env, err error) {
	log := logs.OrDiscard(opts.Logger)
	base, err := PrivateDir()
	if err != nil {
		return nil, err
	}
	removeStaleRuns(base, log)
	dir, err := os.MkdirTemp(base, runPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, err
	}
	// env, not the result: a failing return sets the result to nil before
	// this runs, and the directory must go all the same.
	env := &Env{dir: dir}
	defer func() {
		if err != nil {
			env.Close()
		}
	}()
	empty := filepath.Join(dir, "empty.d")
	certs := filepath.Join(dir, "certs.d")
	for _, d := range []string{empty, certs} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	regConf := filepath.Join(dir, "registries.conf")
	hosts := hostsOf(s, opts.Hosts)
	env.spec = s
	env.exact = map[string]bool{}
	for _, h := range shadowed(s, hosts) {
		env.exact[h] = true
	}
	if err := writeRegistriesConf(regConf, s, hosts); err != nil {
		return nil, err
	}
	if err := writeCerts(certs, s); err != nil {
		return nil, err
	}
	regsD := empty
	if sig := sigstoreNamespaces(s); len(sig) > 0 {
		regsD = filepath.Join(dir, "registries.d")
		if err := os.Mkdir(regsD, 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(regsD, "sigstore.yaml"), SigstoreAttachments(sig), 0o600); err != nil {
			return nil, err
		}
	}
	env.Sys = &types.SystemContext{
		SystemRegistriesConfPath:    regConf,
		SystemRegistriesConfDirPath: empty,
		RegistriesDirPath:           regsD,
		UserShortNameAliasConfPath:  filepath.Join(dir, "short-name-aliases.conf"),
		AuthFilePath:                filepath.Join(dir, "auth.json"),
		DockerPerHostCertDirPath:    certs,
		BlobInfoCacheDir:            dir,
		BigFilesTemporaryDir:        dir,
		DockerRegistryUserAgent:     opts.UserAgent,
	}
	if err := writeAuth(env.Sys.AuthFilePath, s, hosts, dir, regConf, empty, log); err != nil {
		return nil, err
	}
	return env, nil
}

// Close removes the generated files, credentials included.
func (e *Env) Close() error {
	if e == nil || e.dir == "" {
		return nil
	}
	return os.RemoveAll(e.dir)
}

// runPrefix starts the name of a run's directory: run-<PID>-<random>.
const runPrefix = "run-"

// PrivateDir is the user's own directory for the generated configuration
// and credentials of runs: $XDG_RUNTIME_DIR/airgap-bundle (a per-user
// tmpfs) when there is one, else airgap-bundle/run under the user's cache
// directory ($XDG_CACHE_HOME, ~/.cache). Never the shared temporary
// directory: a credentials file there outlives a killed run where every
// local user can see its name. It is created, or tightened to, 0700.
func PrivateDir() (string, error) {
	var base string
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			base = filepath.Join(d, "airgap-bundle")
		}
	}
	if base == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("no private directory for credentials (set XDG_RUNTIME_DIR or HOME): %w", err)
		}
		base = filepath.Join(d, "airgap-bundle", "run")
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", err
	}
	st, err := os.Lstat(base)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return "", fmt.Errorf("%s is not a directory", base)
	}
	if st.Mode().Perm() != 0o700 {
		if err := os.Chmod(base, 0o700); err != nil {
			return "", err
		}
	}
	return base, nil
}

// removeStaleRuns removes the directories (credentials included) of runs
// whose process is gone: killed before Close could run.
func removeStaleRuns(base string, log *slog.Logger) {
	es, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range es {
		rest, ok := strings.CutPrefix(e.Name(), runPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		digits, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(digits)
		if err != nil || atomicfile.PIDAlive(pid) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(base, e.Name())); err != nil {
			log.Warn("cannot remove the directory of an interrupted run", "dir", e.Name(), "error", err)
		}
	}
}

type confEndpoint struct {
	Location       string `toml:"location"`
	Insecure       bool   `toml:"insecure"`
	PullFromMirror string `toml:"pull-from-mirror,omitempty"`
}

type confRegistry struct {
	Prefix   string         `toml:"prefix"`
	Location string         `toml:"location"`
	Insecure bool           `toml:"insecure"`
	Mirrors  []confEndpoint `toml:"mirror,omitempty"`
}

type conf struct {
	UnqualifiedSearchRegistries []string       `toml:"unqualified-search-registries"`
	ShortNameMode               string         `toml:"short-name-mode"`
	CredentialHelpers           []string       `toml:"credential-helpers"`
	Registries                  []confRegistry `toml:"registry"`
}

// RegistriesConf renders the registries.conf a spec implies for a run that
// contacts hosts (host[:port] each, besides the spec's own).
//
// A spec's key applies to exactly that host[:port]. containers/image matches
// registries.conf prefixes loosely: "127.0.0.1" also matches
// "127.0.0.1:6102/…" (sysregistriesv2.refMatchingPrefix), which would give
// another port of the host the key's insecure = true and mirrors. So every
// contacted host that such a key would match gets an explicit entry of its
// own with the defaults (TLS verified, no mirrors); the longest prefix wins.
func RegistriesConf(s *spec.Spec, hosts ...string) ([]byte, error) {
	c := conf{UnqualifiedSearchRegistries: []string{}, ShortNameMode: "enforcing", CredentialHelpers: []string{"containers-auth.json"}}
	declared := make([]string, 0, len(s.Registries))
	for h := range s.Registries {
		declared = append(declared, h)
	}
	sort.Strings(declared)
	for _, h := range declared {
		r := s.Registries[h]
		cr := confRegistry{Prefix: h, Location: h, Insecure: r.Insecure}
		for _, m := range r.Mirrors {
			insecure := m.Insecure
			if mr, ok := s.Registries[m.Host()]; ok && mr.Insecure {
				insecure = true
			}
			cr.Mirrors = append(cr.Mirrors, confEndpoint{Location: m.Location, Insecure: insecure, PullFromMirror: m.PullFromMirror})
		}
		c.Registries = append(c.Registries, cr)
	}
	for _, h := range shadowed(s, hosts) {
		c.Registries = append(c.Registries, confRegistry{Prefix: h, Location: h})
	}
	var b []byte
	buf := &byteWriter{&b}
	fmt.Fprintln(buf, "# Generated by airgap-bundle from the spec; host registries.conf files are not read.")
	if err := toml.NewEncoder(buf).Encode(c); err != nil {
		return nil, err
	}
	return b, nil
}

type byteWriter struct{ b *[]byte }

func (w *byteWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }

// shadowed lists the hosts, not declared themselves, that a declared key
// would match as a registries.conf prefix: "H:PORT" for a key "H".
func shadowed(s *spec.Spec, hosts []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, h := range hosts {
		if _, ok := s.Registries[h]; ok || seen[h] {
			continue
		}
		if bare, _, ok := strings.Cut(h, ":"); ok && !strings.HasPrefix(h, "[") {
			if _, ok := s.Registries[bare]; ok {
				seen[h] = true
				out = append(out, h)
			}
		} else if i := strings.LastIndex(h, "]:"); strings.HasPrefix(h, "[") && i > 0 {
			if _, ok := s.Registries[h[:i+1]]; ok {
				seen[h] = true
				out = append(out, h)
			}
		}
	}
	sort.Strings(out)
	return out
}

// ErrUnplannedHost marks a registry host the run was not set up for, whose
// settings would silently come from a declared key of the same bare host.
var ErrUnplannedHost = errors.New("registry host not planned for this run")

// Check refuses a host that a declared bare-host key would match by prefix
// but that got no explicit entry when the Env was made: settings apply to
// exactly the host[:port] of their key, never to other ports.
func (e *Env) Check(host string) error {
	if e == nil || e.spec == nil || e.exact[host] {
		return nil
	}
	if _, ok := e.spec.Registries[host]; ok {
		return nil
	}
	if len(shadowed(e.spec, []string{host})) > 0 {
		return fmt.Errorf("%w: %s (list it in Options.Hosts, or declare it in the spec)", ErrUnplannedHost, host)
	}
	return nil
}

// sigstoreNamespaces are the registries whose images need signatures and
// their mirrors: containers/image decides whether to read sigstore
// attachments by the endpoint that serves an image, so behind a mirror
// the registry's own entry alone would leave every signature unread.
func sigstoreNamespaces(s *spec.Spec) []string {
	var out []string
	for _, h := range s.SigstoreHosts() {
		out = append(out, h)
		if r, ok := s.Registries[h]; ok {
			for _, m := range r.Mirrors {
				if !slices.Contains(out, m.Location) {
					out = append(out, m.Location)
				}
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// SigstoreAttachments is the registries.d configuration (see
// containers-registries.d(5)) that makes containers/image read cosign's
// signature attachments of hosts, and nothing else: no lookaside storage.
func SigstoreAttachments(hosts []string) []byte {
	var b strings.Builder
	b.WriteString("# Generated by airgap-bundle for this run.\ndocker:\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "  %s:\n    use-sigstore-attachments: true\n", strconv.Quote(h))
	}
	return []byte(b.String())
}

func writeRegistriesConf(path string, s *spec.Spec, hosts []string) error {
	b, err := RegistriesConf(s, hosts...)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// writeCerts gives every host with a ca-file the layout containers/image
// reads from certs.d: <host[:port]>/ca.crt.
func writeCerts(dir string, s *spec.Spec) error {
	for h, r := range s.Registries {
		if r.CAFile == "" {
			continue
		}
		pem, err := inputfile.Read(context.Background(), r.CAFile, inputfile.MaxSmall)
		if err != nil {
			return fmt.Errorf("%s: registries.%q.ca-file: %w", r.Pos, h, err)
		}
		hd := filepath.Join(dir, h)
		if err := os.MkdirAll(hd, 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(hd, "ca.crt"), pem, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// hostsOf lists every host the run may contact: declared registries, their
// mirrors, the registries of the spec's images and its charts' hosts.
func hostsOf(s *spec.Spec, extra []string) []string {
	set := map[string]bool{}
	for h, r := range s.Registries {
		set[h] = true
		for _, m := range r.Mirrors {
			set[m.Host()] = true
		}
	}
	for _, g := range s.Groups {
		for _, img := range g.Images {
			set[img.Ref.Domain()] = true
		}
		for _, c := range g.Charts {
			if h := c.Host(); h != "" {
				set[h] = true
			}
		}
	}
	for _, h := range extra {
		set[h] = true
	}
	out := make([]string, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

func writeAuth(path string, s *spec.Spec, hosts []string, dir, regConf, empty string, log *slog.Logger) error {
	auths := map[string]authEntry{}
	var errs []error
	for _, h := range hosts {
		var a *spec.Auth
		var pos errdefs.Pos
		if r, ok := s.Registries[h]; ok {
			a, pos = r.Auth, r.Pos
		}
		creds, err := lookup(h, a, dir, regConf, empty)
		if err != nil {
			if a == nil {
				// The standard locations are a convenience: a broken
				// ~/.docker/config.json must not stop an anonymous pull.
				log.Warn("ignoring unreadable standard credentials", "registry", h, "error", err)
				continue
			}
			errs = append(errs, fmt.Errorf("%s: registry %q: %w", pos, h, err))
			continue
		}
		switch {
		case creds.IdentityToken != "":
			auths[h] = authEntry{IdentityToken: creds.IdentityToken}
		case creds.Username != "" || creds.Password != "":
			auths[h] = authEntry{Auth: base64.StdEncoding.EncodeToString([]byte(creds.Username + ":" + creds.Password))}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if len(auths) == 0 {
		return nil
	}
	b, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// lookup reads one host's credentials from the source the spec names.
func lookup(host string, a *spec.Auth, dir, regConf, empty string) (types.DockerAuthConfig, error) {
	sys := &types.SystemContext{SystemRegistriesConfPath: regConf, SystemRegistriesConfDirPath: empty}
	switch {
	case a == nil:
		// As podman and skopeo do: $REGISTRY_AUTH_FILE replaces the default
		// chain (containers/image leaves this variable to its callers).
		if f := os.Getenv("REGISTRY_AUTH_FILE"); f != "" {
			sys.AuthFilePath = f
		}
	case a.PasswordEnv != "":
		user := a.Username
		if a.UsernameEnv != "" {
			v, ok := os.LookupEnv(a.UsernameEnv)
			if !ok || v == "" {
				return types.DockerAuthConfig{}, fmt.Errorf("%w: environment variable %s (auth.username-env) is not set", ErrCredentials, a.UsernameEnv)
			}
			user = v
		}
		pass, ok := os.LookupEnv(a.PasswordEnv)
		if !ok || pass == "" {
			return types.DockerAuthConfig{}, fmt.Errorf("%w: environment variable %s (auth.password-env) is not set", ErrCredentials, a.PasswordEnv)
		}
		return types.DockerAuthConfig{Username: user, Password: pass}, nil
	case a.File != "":
		// containers/image reads the file itself: it gets a copy read
		// within the cap, in the run's private directory, so a device or
		// FIFO named there cannot hang or exhaust the run.
		data, err := inputfile.Read(context.Background(), a.File, inputfile.MaxSmall)
		if err != nil {
			return types.DockerAuthConfig{}, fmt.Errorf("%w: auth.file: %v", ErrCredentials, err)
		}
		copied, err := os.CreateTemp(dir, "authfile-*.json")
		if err != nil {
			return types.DockerAuthConfig{}, err
		}
		defer os.Remove(copied.Name())
		_, err = copied.Write(data)
		if cerr := copied.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return types.DockerAuthConfig{}, err
		}
		sys.AuthFilePath = copied.Name()
	case a.Helper != "":
		// containers/image takes its list of helpers from registries.conf.
		helperConf := filepath.Join(dir, "helper-"+a.Helper+".conf")
		b, err := toml.Marshal(map[string][]string{"credential-helpers": {a.Helper}})
		if err != nil {
			return types.DockerAuthConfig{}, err
		}
		if err := os.WriteFile(helperConf, b, 0o600); err != nil {
			return types.DockerAuthConfig{}, err
		}
		sys.SystemRegistriesConfPath = helperConf
	}
	creds, err := config.GetCredentials(sys, host)
	if err != nil {
		return creds, fmt.Errorf("%w: %v", ErrCredentials, err)
	}
	if a != nil && creds == (types.DockerAuthConfig{}) {
		src := "auth.file " + a.File
		if a.Helper != "" {
			src = "credential helper docker-credential-" + a.Helper
		}
		return creds, fmt.Errorf("%w: %s has no credentials for %s", ErrCredentials, src, host)
	}
	return creds, nil
}
