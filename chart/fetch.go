package chart

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/internal/inputfile"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
	"github.com/airgap-bundle/airgap-bundle/registry"
)

// Fetcher finds the version of a chart a spec asks for and brings its
// archive (and, for an OCI chart, its manifest and config) into a cache,
// each checked against its digest. Credentials and TLS of every host come
// from the run's registry settings (Target), as for images.
type Fetcher struct {
	Target func(host string) (*registry.Target, error)
	Cache  *cache.Cache
	Policy registry.Policy
}

// Pin is what a chart resolved to; lockfile.Chart records it.
type Pin struct {
	Name, Version string
	// Digest: the .tgz's sha256, or an OCI chart's manifest digest.
	Digest  digest.Digest
	Archive digest.Digest // the .tgz's sha256
	Size    int64
	URL     string // HTTP repositories: where the .tgz was
}

// Resolve pins c: the newest version its constraint allows (HTTP and OCI
// charts) or the chart at its path, with the archive in the cache.
func (f *Fetcher) Resolve(ctx context.Context, c *config.Chart) (*Pin, error) {
	var p *Pin
	var err error
	switch {
	case c.Repo != "":
		p, err = f.resolveRepo(ctx, c)
	case c.OCI != "":
		p, err = f.resolveOCI(ctx, c)
	default:
		p, err = f.resolvePath(ctx, c)
	}
	if err != nil {
		return nil, err
	}
	meta, err := f.Metadata(p.Archive)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.Label(), p.Version, err)
	}
	if c.Path == "" && (meta.Name != c.Name || meta.Version != p.Version) {
		return nil, fmt.Errorf("%s %s: the archive holds chart %q version %s", c.Label(), p.Version, meta.Name, meta.Version)
	}
	p.Name, p.Version = meta.Name, meta.Version
	return p, nil
}

// Metadata reads the Chart.yaml of an archive in the cache.
func (f *Fetcher) Metadata(archive digest.Digest) (*Metadata, error) {
	file, err := f.Cache.OpenVerified(archive)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	return ParseArchiveMetadata(io.LimitReader(file, MaxArchive+1))
}

// Archive returns the path of a pinned chart's .tgz in the cache, fetching
// it again from where it was found when the cache lacks it. The file is
// checked against the pin before it is returned.
func (f *Fetcher) Archive(ctx context.Context, c *config.Chart, l *lockfile.Chart) (string, error) {
	if f.Cache.Has(l.Archive, l.Size) {
		if p, err := f.verified(l.Archive, l.Size); err == nil {
			return p, nil
		}
	}
	var err error
	switch {
	case c.Repo != "":
		_, _, err = f.download(ctx, c.Host(), l.URL, l.Archive)
	case c.OCI != "":
		err = f.fetchOCI(ctx, c, l.Digest)
	default:
		var p *Pin
		if p, err = f.resolvePath(ctx, c); err == nil && p.Archive != l.Archive {
			err = fmt.Errorf("%s changed since it was locked (now %s, locked %s): run \"airgap-bundle lock\"", c.Label(), p.Archive, l.Archive)
		}
	}
	if err != nil {
		return "", err
	}
	return f.verified(l.Archive, l.Size)
}

// verified hashes a cached archive (charts are small) and returns its path.
func (f *Fetcher) verified(d digest.Digest, size int64) (string, error) {
	r, err := f.Cache.Open(d, size)
	if err != nil {
		return "", err
	}
	defer r.Close()
	if _, err := io.Copy(io.Discard, r); err != nil {
		return "", err
	}
	file, err := f.Cache.OpenVerified(d)
	if err != nil {
		return "", err
	}
	file.Close()
	return file.Name(), nil
}

// OCI returns an OCI chart's manifest and config from the cache, fetching
// them by digest when the cache lacks them.
func (f *Fetcher) OCI(ctx context.Context, c *config.Chart, l *lockfile.Chart) (manifest, config []byte, err error) {
	manifest, err = cache.ReadSmall(f.Cache.Dir(), l.Digest, maxManifest)
	if err != nil {
		if err := f.fetchOCI(ctx, c, l.Digest); err != nil {
			return nil, nil, err
		}
		if manifest, err = cache.ReadSmall(f.Cache.Dir(), l.Digest, maxManifest); err != nil {
			return nil, nil, err
		}
	}
	m, err := parseChartManifest(manifest)
	if err != nil {
		return nil, nil, err
	}
	config, err = cache.ReadSmall(f.Cache.Dir(), m.Config.Digest, maxManifest)
	if err != nil {
		return nil, nil, err
	}
	return manifest, config, nil
}

const maxManifest = 4 << 20

// ---- HTTP repositories

func (f *Fetcher) resolveRepo(ctx context.Context, c *config.Chart) (*Pin, error) {
	host := c.Host()
	var data []byte
	indexURL := c.Repo + "/index.yaml"
	err := f.Policy.Do(ctx, "GET "+indexURL, func(ctx context.Context) error {
		body, err := f.get(ctx, host, indexURL)
		if err != nil {
			return err
		}
		defer body.Close()
		data, err = io.ReadAll(io.LimitReader(body, MaxIndex+1))
		if err == nil && len(data) > MaxIndex {
			err = fmt.Errorf("index.yaml is over %s", inputfile.Size(MaxIndex))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Label(), err)
	}
	idx, err := ParseIndex(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", c.Label(), indexURL, err)
	}
	e, err := idx.entry(c.Name, c.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Label(), err)
	}
	u, err := resolveURL(c.Repo, e.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.Label(), e.Version, err)
	}
	var want digest.Digest
	if e.Digest != "" {
		want = digest.NewDigestFromEncoded(digest.SHA256, strings.ToLower(e.Digest))
		if want.Validate() != nil {
			want = "" // a malformed digest in the index: the archive's own is pinned
		}
	}
	d, size, err := f.download(ctx, host, u, want)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.Label(), e.Version, err)
	}
	return &Pin{Version: e.Version, Digest: d, Archive: d, Size: size, URL: u}, nil
}

// download brings the .tgz at u into the cache; want, when set, is the
// digest it must have.
func (f *Fetcher) download(ctx context.Context, repoHost, u string, want digest.Digest) (digest.Digest, int64, error) {
	var d digest.Digest
	var size int64
	err := f.Policy.Do(ctx, "GET "+u, func(ctx context.Context) error {
		body, err := f.get(ctx, repoHost, u)
		if err != nil {
			return err
		}
		defer body.Close()
		d, size, err = f.put(ctx, io.LimitReader(body, MaxArchive+1), want)
		return err
	})
	return d, size, err
}

// put stores an archive of unknown digest: through a temporary file,
// hashed on the way, then into the cache under its digest.
func (f *Fetcher) put(ctx context.Context, r io.Reader, want digest.Digest) (digest.Digest, int64, error) {
	tmp, err := os.CreateTemp(f.Cache.TempDir(), "chart-*.tgz")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err != nil {
		return "", 0, err
	}
	if n > MaxArchive {
		return "", 0, fmt.Errorf("the chart archive is over %s", inputfile.Size(MaxArchive))
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
	if want != "" && d != want {
		return "", 0, fmt.Errorf("%w: the archive's sha256 is %s, the repository's index says %s", cache.ErrDigest, d, want)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", 0, err
	}
	if err := f.Cache.Put(ctx, d, n, tmp); err != nil {
		return "", 0, err
	}
	return d, n, nil
}

// get sends GET u with the settings of its host. Credentials of the
// repository's host go to that host only, as helm does by default: an
// index may point at archives elsewhere (a release page).
func (f *Fetcher) get(ctx context.Context, repoHost, u string) (io.ReadCloser, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	t, err := f.Target(pu.Host)
	if err != nil {
		return nil, err
	}
	if pu.Scheme == "http" && !t.Insecure {
		return nil, fmt.Errorf("%s: plain http is refused; use https, or set insecure = true under [registries.%q]", u, pu.Host)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "airgap-bundle")
	if pu.Host == repoHost && t.HasCredentials {
		ac, err := authn.Authorization(ctx, t.Auth)
		if err != nil {
			return nil, err
		}
		if ac.Username != "" || ac.Password != "" {
			req.SetBasicAuth(ac.Username, ac.Password)
		}
	}
	resp, err := (&http.Client{Transport: t.Transport}).Do(req)
	if err != nil {
		return nil, registry.Reach(pu.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, &StatusError{URL: u, Code: resp.StatusCode}
	}
	return resp.Body, nil
}

// StatusError is an HTTP answer other than 200 from a chart repository.
type StatusError struct {
	URL  string
	Code int
}

func (e *StatusError) Error() string {
	hint := ""
	switch e.Code {
	case http.StatusUnauthorized, http.StatusForbidden:
		hint = " (credentials come from [registries.\"HOST\"].auth, as for images)"
	case http.StatusNotFound:
		hint = " (is the repo URL the directory that holds index.yaml?)"
	}
	return fmt.Sprintf("GET %s: %d %s%s", e.URL, e.Code, http.StatusText(e.Code), hint)
}

// Transient lets Policy.Do retry 5xx and 429 answers.
func (e *StatusError) Transient() bool {
	return e.Code >= 500 || e.Code == http.StatusTooManyRequests
}

// ---- OCI registries

func (f *Fetcher) ociRepo(c *config.Chart) (name.Repository, []remote.Option, error) {
	host := c.Host()
	t, err := f.Target(host)
	if err != nil {
		return name.Repository{}, nil, err
	}
	var nopts []name.Option
	if t.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	repo, err := name.NewRepository(strings.TrimPrefix(c.OCI, "oci://"), nopts...)
	if err != nil {
		return name.Repository{}, nil, err
	}
	return repo, []remote.Option{remote.WithTransport(t.Transport), remote.WithAuth(t.Auth)}, nil
}

func (f *Fetcher) resolveOCI(ctx context.Context, c *config.Chart) (*Pin, error) {
	repo, opts, err := f.ociRepo(c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Label(), err)
	}
	opts = append(opts, remote.WithContext(ctx))
	var tags []string
	err = f.Policy.Do(ctx, "list tags of "+repo.String(), func(context.Context) error {
		var err error
		tags, err = remote.List(repo, opts...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: listing its versions: %w", c.Label(), registry.Reach(repo.RegistryStr(), err))
	}
	// helm push writes a version's "+" as "_": a tag cannot hold "+".
	versions := make([]string, len(tags))
	for i, t := range tags {
		versions[i] = strings.ReplaceAll(t, "_", "+")
	}
	v, err := ChooseVersion(c.Version, versions)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Label(), err)
	}
	var desc *remote.Descriptor
	err = f.Policy.Do(ctx, "GET manifest "+repo.String(), func(context.Context) error {
		var err error
		desc, err = remote.Get(repo.Tag(strings.ReplaceAll(v, "+", "_")), opts...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.Label(), v, registry.Reach(repo.RegistryStr(), err))
	}
	d := digest.Digest(desc.Digest.String())
	layer, err := f.storeOCI(ctx, repo, opts, d, desc.Manifest)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.Label(), v, err)
	}
	return &Pin{Version: v, Digest: d, Archive: layer.Digest, Size: layer.Size}, nil
}

// fetchOCI brings a pinned OCI chart (manifest d) into the cache.
func (f *Fetcher) fetchOCI(ctx context.Context, c *config.Chart, d digest.Digest) error {
	repo, opts, err := f.ociRepo(c)
	if err != nil {
		return err
	}
	opts = append(opts, remote.WithContext(ctx))
	var desc *remote.Descriptor
	err = f.Policy.Do(ctx, "GET manifest "+repo.String(), func(context.Context) error {
		var err error
		desc, err = remote.Get(repo.Digest(d.String()), opts...)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s@%s: %w", c.Label(), d, registry.Reach(repo.RegistryStr(), err))
	}
	_, err = f.storeOCI(ctx, repo, opts, d, desc.Manifest)
	return err
}

// storeOCI checks a chart manifest and puts it, its config and its chart
// layer into the cache.
func (f *Fetcher) storeOCI(ctx context.Context, repo name.Repository, opts []remote.Option, d digest.Digest, manifest []byte) (ocispec.Descriptor, error) {
	if digest.FromBytes(manifest) != d {
		return ocispec.Descriptor{}, fmt.Errorf("%w: manifest %s", cache.ErrDigest, d)
	}
	m, err := parseChartManifest(manifest)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	layer := chartLayer(m)
	if err := f.Cache.Put(ctx, d, int64(len(manifest)), strings.NewReader(string(manifest))); err != nil {
		return ocispec.Descriptor{}, err
	}
	for _, b := range []ocispec.Descriptor{m.Config, layer} {
		if f.Cache.Has(b.Digest, b.Size) {
			continue
		}
		if b.Size > MaxArchive {
			return ocispec.Descriptor{}, fmt.Errorf("blob %s is over %s", b.Digest, inputfile.Size(MaxArchive))
		}
		err := f.Policy.Do(ctx, "GET blob "+b.Digest.String(), func(context.Context) error {
			l, err := remote.Layer(repo.Digest(b.Digest.String()), opts...)
			if err != nil {
				return err
			}
			rc, err := l.Compressed()
			if err != nil {
				return err
			}
			defer rc.Close()
			return f.Cache.Put(ctx, b.Digest, b.Size, rc)
		})
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("blob %s: %w", b.Digest, registry.Reach(repo.RegistryStr(), err))
		}
	}
	return layer, nil
}

func parseChartManifest(data []byte) (*ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not a chart manifest: %v", err)
	}
	if m.Config.MediaType != ConfigMediaType {
		return nil, fmt.Errorf("not a Helm chart: its config is %q, not %s", m.Config.MediaType, ConfigMediaType)
	}
	if chartLayer(&m).Digest == "" {
		return nil, fmt.Errorf("a Helm chart manifest without a %s layer", ContentMediaType)
	}
	for _, d := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		if d.Digest.Validate() != nil || d.Size < 0 {
			return nil, fmt.Errorf("a chart manifest with a malformed descriptor %q", d.Digest)
		}
	}
	return &m, nil
}

func chartLayer(m *ocispec.Manifest) ocispec.Descriptor {
	for _, l := range m.Layers {
		if l.MediaType == ContentMediaType || l.MediaType == LegacyContentMediaType {
			return l
		}
	}
	return ocispec.Descriptor{}
}

// ---- local charts

// Packager packages a chart directory into a reproducible .tgz (Package,
// through the companion binary); a variable so tests of fetching alone
// need no Helm.
var Packager = Package

func (f *Fetcher) resolvePath(ctx context.Context, c *config.Chart) (*Pin, error) {
	st, err := os.Stat(c.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Label(), err)
	}
	var r io.ReadCloser
	if st.IsDir() {
		tmp, err := os.MkdirTemp(f.Cache.TempDir(), "package-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		out := filepath.Join(tmp, "chart.tgz")
		if _, _, err := Packager(ctx, c.Path, out); err != nil {
			return nil, fmt.Errorf("%s: packaging: %w", c.Label(), err)
		}
		if r, err = os.Open(out); err != nil {
			return nil, err
		}
	} else {
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: not a chart directory or a .tgz", c.Label())
		}
		if r, err = os.Open(c.Path); err != nil {
			return nil, err
		}
	}
	defer r.Close()
	d, n, err := f.put(ctx, io.LimitReader(r, MaxArchive+1), "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Label(), err)
	}
	return &Pin{Digest: d, Archive: d, Size: n}, nil
}
