// Package serve is a read-only OCI distribution registry served straight
// from archives: each archive is read once (archive.Read, one streaming
// pass that hashes every blob and records where it lies in the file), then
// manifests and blobs are served from the file in place. Only offsets,
// sizes and the small JSON documents are kept in memory.
//
// A compressed archive (.tar.gz, .tar.zst) cannot be served in place: a
// blob in the middle of a compressed stream is only reached by
// decompressing everything before it. Such an archive is decompressed once
// into Options.UnpackDir, named by the compressed file's sha256, and served
// from there; a later Open of the same archive finds it. Seek points in the
// compressed stream would save that disk space, but would need an index
// the archive does not carry, and image layers barely compress again, so
// the unpacked tar is about the size of the archive.
package serve

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/delta"
	"github.com/airgap-bundle/airgap-bundle/image"
)

// Connection timeouts (Options take others, for tests). A blob of several
// GiB to a node on a slow link takes as long as it takes, so a response
// has no deadline as a whole (http.Server's WriteTimeout would cut it);
// instead every write must make progress: each piece of at most
// writeChunk bytes gets WriteStallTimeout to be taken by the connection
// (the kernel's send buffer, then the client). A client that stops
// reading is cut after that long; one that reads slowly is not.
const (
	// DefaultReadHeaderTimeout bounds a request's headers, and the TLS
	// handshake, from the first byte.
	DefaultReadHeaderTimeout = 30 * time.Second
	// DefaultIdleTimeout closes a keep-alive connection that has no next
	// request.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultWriteStallTimeout cuts a response whose client takes no
	// writeChunk bytes in that long (below ~1 KiB/s).
	DefaultWriteStallTimeout = time.Minute
	writeChunk               = 64 << 10
)

// Options say how archives are opened and served.
type Options struct {
	// UnpackDir is where compressed archives are decompressed to; empty
	// refuses them (archive.ErrCompressed).
	UnpackDir string
	// Logger gets what happens while serving (an archive that changed on
	// disk); nil discards it.
	Logger *slog.Logger
	// The connection timeouts of Server; zero means the default.
	ReadHeaderTimeout, IdleTimeout, WriteStallTimeout time.Duration
}

// archiveFile is one file served from and what it was when it was read:
// blobs are served in place under digests computed at start, so a file
// changed since (rewritten in place, truncated) would serve other bytes
// under those digests, or a Content-Length it cannot fill. Its size and
// mtime are compared before every response; once they differ, nothing
// more is served from it.
type archiveFile struct {
	f       *os.File
	archive string // the archive as given
	path    string // the file read: the archive, or its decompressed copy
	size    int64
	mtime   time.Time
	changed atomic.Bool
}

// check says how the file differs from what was read, or "".
func (a *archiveFile) check() string {
	fi, err := a.f.Stat()
	switch {
	case err != nil:
		return err.Error()
	case fi.Size() != a.size:
		return fmt.Sprintf("its size is %d bytes, it was %d", fi.Size(), a.size)
	case !fi.ModTime().Equal(a.mtime):
		return fmt.Sprintf("its mtime is %s, it was %s when serve read it", fi.ModTime().Format(time.RFC3339Nano), a.mtime.Format(time.RFC3339Nano))
	}
	return ""
}

// intact reports whether the file is as it was read, logging once when it
// is not.
func (a *archiveFile) intact(log *slog.Logger) bool {
	if a.changed.Load() {
		return false
	}
	why := a.check()
	if why == "" {
		return true
	}
	if a.changed.CompareAndSwap(false, true) {
		attrs := []any{"archive", a.archive, "why", why}
		if a.path != a.archive {
			attrs = append(attrs, "file", a.path)
		}
		log.Error("serve: archive changed on disk: its content is no longer served (503 UNAVAILABLE); check it with airgap-bundle verify and restart serve", attrs...)
	}
	return false
}

// location is where one blob lies: [off, off+size) of an archive file.
type location struct {
	file *archiveFile
	off  int64
	size int64
}

// repo is one repository: its tags, the manifests and indexes it can be
// asked for by digest (with their media types) and the blobs its images use.
type repo struct {
	// name is the repository's full name (127.0.0.1:5000/bench/multiarch);
	// it is served under its per-host path (127.0.0.1_5000/bench/multiarch).
	name      string
	tags      map[string]image.Descriptor
	manifests map[digest.Digest]image.MediaType
	blobs     map[digest.Digest]bool
	// referrers are the carried OCI referrers, by subject (the referrers
	// API answers from them).
	referrers map[digest.Digest][]referrer
	// fromDelta says which tags a delta archive gave (see addImage).
	fromDelta map[string]bool
}

// referrer is one entry of a referrers index.
type referrer struct {
	MediaType    image.MediaType   `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// Registry serves archives; it is an http.Handler. Close closes the files.
type Registry struct {
	files []*archiveFile
	// blobs are where each blob lies, in every archive that holds it: one
	// archive changed on disk leaves the others serving it.
	blobs map[digest.Digest][]location
	repos map[string]*repo
	log   *slog.Logger
	// needs are the blobs served images reference that their own archive
	// lacks (a delta's left-out layers, else damage): Open finds each in
	// another archive, or refuses to start.
	needs []need
	// the connection timeouts, defaults filled in
	readHeaderTimeout, idleTimeout, writeStallTimeout time.Duration
}

// Archive is one archive Open read.
type Archive struct {
	Path string
	// Unpacked is the decompressed copy served for a compressed archive.
	Unpacked string
	Images   int
	Blobs    int
	// Skipped are the names (or images) not served, each with why: a
	// name that is not a valid reference, an image of a Docker archive.
	Skipped []string
	// Delta is the delta.json that lists the archive as a delta archive
	// ("" for a full one); LeftOut and LeftOutBytes count the blobs it
	// says the archive leaves out.
	Delta        string
	LeftOut      int
	LeftOutBytes int64
	// Borrowed are the blobs its images need that it lacks, each served
	// from another archive that holds it.
	Borrowed []Borrowed
	// Retagged says which tags a delta archive took over from a full
	// archive (or kept from one), each with both digests.
	Retagged []string
}

// Borrowed is a blob an image needs that its archive lacks, served from
// another archive.
type Borrowed struct {
	Image  string
	Digest digest.Digest
	Size   int64
	// From is the archive it is served from (the first of those that
	// hold it; the others serve it if that one changes on disk).
	From string
}

// need is one blob a served image references that its archive lacks.
type need struct {
	archive int // index in Open's []Archive
	image   string
	d       image.Descriptor
	// leftOut is set when the archive is a delta archive that leaves it
	// out on purpose: where says which BASE group holds it.
	leftOut bool
	where   string
}

// Open reads each archive once (or each .tar in a directory given) and
// returns the registry serving them. Compressed archives are refused
// (archive.ErrCompressed); so is one whose blobs do not hash to their names, and a
// tag two archives give different digests (except a delta archive's, which
// wins over a full archive's: see addImage).
//
// The archives are served as one union: a blob an image needs that its
// own archive lacks (the layers a delta archive leaves out, delta.json
// beside it says which) is served from any other archive that holds it,
// and Archive.Borrowed says which and from where. A blob some served image
// needs that no archive holds stops Open, every such blob named: serving
// the rest would let a node pull the image's manifest and fail on its
// layers only when a pod starts.
func Open(ctx context.Context, paths []string, opts Options) (*Registry, []Archive, error) {
	r := &Registry{blobs: map[digest.Digest][]location{}, repos: map[string]*repo{}, log: opts.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.readHeaderTimeout = cmp.Or(opts.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	r.idleTimeout = cmp.Or(opts.IdleTimeout, DefaultIdleTimeout)
	r.writeStallTimeout = cmp.Or(opts.WriteStallTimeout, DefaultWriteStallTimeout)
	files, skipped, err := archive.ListFiles(paths)
	if err != nil {
		return nil, nil, fmt.Errorf("serve: %w", err)
	}
	for _, why := range skipped {
		r.log.Warn("serve: a directory entry named like an archive is not served", "why", why)
	}
	var out []Archive
	for i, p := range files {
		a, err := r.add(ctx, i, p, opts)
		if err != nil {
			r.Close()
			return nil, nil, err
		}
		out = append(out, a)
	}
	if err := r.borrow(out); err != nil {
		r.Close()
		return nil, nil, err
	}
	return r, out, nil
}

// borrow finds, for every blob a served image needs that its archive
// lacks, another archive that holds it; it names all those no archive
// holds.
func (r *Registry) borrow(archives []Archive) error {
	var missing []string
	for _, n := range r.needs {
		a := &archives[n.archive]
		if locs := r.blobs[n.d.Digest]; len(locs) > 0 {
			a.Borrowed = append(a.Borrowed, Borrowed{Image: n.image, Digest: n.d.Digest, Size: n.d.Size, From: locs[0].file.archive})
			r.log.Info("serve: a blob an image needs is served from another archive", "archive", a.Path, "image", n.image, "digest", n.d.Digest, "from", locs[0].file.archive)
			continue
		}
		if n.leftOut {
			missing = append(missing, fmt.Sprintf("%s: %s: blob %s (%d bytes): the delta leaves it out (BASE's %s holds it) and no archive served holds it: serve BASE's archives with the delta (airgap-bundle serve BASE_DIR DELTA_DIR)", a.Path, n.image, n.d.Digest, n.d.Size, n.where))
		} else {
			missing = append(missing, fmt.Sprintf("%s: %s: blob %s (%d bytes) is missing from the archive and no other archive served holds it (airgap-bundle verify %s)", a.Path, n.image, n.d.Digest, n.d.Size, a.Path))
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("serve: %s", missing[0])
	}
	return fmt.Errorf("serve: %d blobs that served images need are in no archive:\n  %s", len(missing), strings.Join(missing, "\n  "))
}

func (r *Registry) add(ctx context.Context, i int, p string, opts Options) (Archive, error) {
	a := Archive{Path: p}
	of, err := delta.ForArchive(ctx, p)
	if err != nil {
		return a, fmt.Errorf("serve: %s: the delta.json beside it: %w", p, err)
	}
	var leftOut map[digest.Digest]delta.Blob
	if of != nil {
		a.Delta = filepath.Join(of.Dir, delta.FileName)
		a.LeftOut, a.LeftOutBytes = len(of.Archive.FromBase), of.Archive.LeftOutBytes()
		leftOut = of.Archive.LeftOut()
	}
	s, err := archive.OpenSeekable(ctx, p, archive.SeekableOptions{Dir: opts.UnpackDir, Keep: true})
	if errors.Is(err, archive.ErrCompressed) {
		return a, fmt.Errorf("serve: %s: %w (or give serve --unpack-dir)", p, err)
	}
	if err != nil {
		return a, fmt.Errorf("serve: %s: %w", p, err)
	}
	a.Unpacked = s.Copy
	af := &archiveFile{f: s.File, archive: p, path: p, size: s.Info.Size(), mtime: s.Info.ModTime()}
	if a.Unpacked != "" {
		af.path = a.Unpacked
	}
	c := s.Contents
	r.files = append(r.files, af)
	if err := checkBlobs(c, p); err != nil {
		return Archive{}, fmt.Errorf("serve: %w (run airgap-bundle verify)", err)
	}
	if why := af.check(); why != "" {
		return Archive{}, fmt.Errorf("serve: %s changed while serve read it (%s): run serve again once nothing writes it", af.path, why)
	}
	for d, b := range c.Blobs {
		fi := c.Files[b.Path]
		r.blobs[d] = append(r.blobs[d], location{file: af, off: fi.Offset, size: fi.Size})
	}
	a.Images, a.Blobs = len(c.Images), len(c.Blobs)
	for _, img := range c.Images {
		served, err := r.addImage(c, img, of != nil, &a)
		if err != nil {
			return Archive{}, fmt.Errorf("serve: %s: %w", p, err)
		}
		if !served {
			continue
		}
		for _, d := range needed(img) {
			if c.Blobs[d.Digest] == nil {
				b, ok := leftOut[d.Digest]
				r.needs = append(r.needs, need{archive: i, image: img.Label(), d: d, leftOut: ok, where: b.Where})
			}
		}
	}
	return a, nil
}

// needed is every blob a client pulling img may ask for: its top, the
// manifests and inner indexes the archive has for it, their configs and
// layers (not the absent children of an original index).
func needed(img archive.Image) []image.Descriptor {
	var out []image.Descriptor
	seen := map[digest.Digest]bool{}
	add := func(d image.Descriptor) {
		if d.Digest != "" && !seen[d.Digest] {
			seen[d.Digest] = true
			out = append(out, d)
		}
	}
	add(img.Top)
	for _, d := range img.Inner {
		add(d)
	}
	for _, m := range img.Manifests {
		add(m.Descriptor)
		add(m.Config)
		for _, l := range m.Layers {
			add(l)
		}
	}
	return out
}

// checkBlobs makes sure every blob of c hashes to its name.
func checkBlobs(c *archive.Contents, p string) error {
	for d, b := range c.Blobs {
		if b.ComputedDigest != d {
			return fmt.Errorf("%s: %s hashes to %s, not its name", p, b.Path, b.ComputedDigest)
		}
	}
	return nil
}

// addImage serves img under each of its names; it reports whether any
// name serves it. fromDelta says the archive is a delta archive: its tags
// are the new version's, so one a full archive gives another digest (the
// site's BASE, served beside the delta: serve BASE_DIR DELTA_DIR) is the
// delta's, in either order. Two full archives, or two deltas, that
// disagree on a tag are refused: which one is meant is not known.
func (r *Registry) addImage(c *archive.Contents, img archive.Image, fromDelta bool, a *Archive) (bool, error) {
	skipped := &a.Skipped
	if img.Top.Digest == "" {
		// A Docker archive's image: no manifest to serve.
		*skipped = append(*skipped, img.Label()+": no index.json entry (a Docker archive): nothing to serve")
		return false, nil
	}
	served := false
	names, artifactTag := img.Names, ""
	if a := img.Artifact; a != nil && len(names) == 0 {
		// A carried signature, SBOM or attestation: served in its image's
		// repository, under cosign's tag (sha256-<hex>.sig, .att, .sbom)
		// when it has one, else by digest only.
		names, artifactTag = []string{a.Image}, a.Tag
		if a.Kind == archive.KindChart {
			// A chart: at charts/NAME:VERSION, for helm pull
			// oci://HOST/charts/NAME.
			n, err := a.ChartName()
			if err != nil {
				*skipped = append(*skipped, fmt.Sprintf("%s: %v", img.Label(), err))
				return false, nil
			}
			names, artifactTag = []string{n}, n[strings.LastIndex(n, ":")+1:]
		}
	}
	for _, n := range names {
		ref, err := image.ParseReference(n, "")
		if err != nil {
			*skipped = append(*skipped, fmt.Sprintf("%s: %v", img.Label(), err))
			continue
		}
		// Keyed by the per-host path, the one name of a repository that
		// every client can ask for; the mirror form (?ns=) maps to it.
		key := ref.PerHostPath()
		if ca := img.Artifact; ca != nil && ca.Kind == archive.KindChart {
			key = ref.Path() // charts/NAME, whatever the naming of images
		}
		if !nameRE.MatchString(key) {
			*skipped = append(*skipped, fmt.Sprintf("%s: %s: its per-host path %q is no repository name a client can ask for", img.Label(), n, key))
			continue
		}
		rp := r.repos[key]
		if rp == nil {
			rp = &repo{name: ref.Name(), tags: map[string]image.Descriptor{}, manifests: map[digest.Digest]image.MediaType{}, blobs: map[digest.Digest]bool{}, fromDelta: map[string]bool{}}
			r.repos[key] = rp
		}
		served = true
		t := ref.Tag()
		if a := img.Artifact; a != nil && len(img.Names) == 0 {
			t = artifactTag
			if a.Kind == "referrer" && !slices.ContainsFunc(rp.referrers[a.Subject], func(x referrer) bool { return x.Digest == img.Top.Digest }) {
				if rp.referrers == nil {
					rp.referrers = map[digest.Digest][]referrer{}
				}
				rp.referrers[a.Subject] = append(rp.referrers[a.Subject], referrerOf(c, img.Top))
			}
		}
		if t != "" {
			old, ok := rp.tags[t]
			switch {
			case !ok || old.Digest == img.Top.Digest:
				rp.tags[t] = img.Top
				rp.fromDelta[t] = rp.fromDelta[t] || fromDelta
			case fromDelta && !rp.fromDelta[t]:
				a.Retagged = append(a.Retagged, fmt.Sprintf("%s: %s, the delta's, not %s, a full archive's", n, img.Top.Digest, old.Digest))
				rp.tags[t], rp.fromDelta[t] = img.Top, true
			case !fromDelta && rp.fromDelta[t]:
				a.Retagged = append(a.Retagged, fmt.Sprintf("%s: %s, a delta's, not %s, this archive's", n, old.Digest, img.Top.Digest))
			default:
				return false, fmt.Errorf("%s: tagged %s here and %s in another archive", n, img.Top.Digest, old.Digest)
			}
		}
		rp.manifests[img.Top.Digest] = img.Top.MediaType
		for _, d := range img.Inner {
			rp.manifests[d.Digest] = d.MediaType
		}
		for _, m := range img.Manifests {
			if m.Digest != "" {
				rp.manifests[m.Digest] = m.MediaType
			}
		}
		// Every blob, in this archive or not: one it lacks is served from
		// another archive (Open's borrow), or Open refuses to start.
		for _, d := range needed(img) {
			rp.blobs[d.Digest] = true
		}
	}
	return served, nil
}

// Close closes the archive files.
func (r *Registry) Close() error {
	var errs []error
	for _, f := range r.files {
		errs = append(errs, f.f.Close())
	}
	return errors.Join(errs...)
}

// Repository is one repository served.
type Repository struct {
	// Path is what a client asks for: the per-host path
	// (image.PerHostPath), the full name for a host without a port.
	Path string
	// Name is the full name of its images (127.0.0.1:5000/bench/multiarch).
	Name string
	Tags []string
}

// Repositories lists the repositories served, by path, with their tags
// sorted.
func (r *Registry) Repositories() []Repository {
	out := make([]Repository, 0, len(r.repos))
	for p, rp := range r.repos {
		out = append(out, Repository{Path: p, Name: rp.name, Tags: sortedTags(rp)})
	}
	slices.SortFunc(out, func(a, b Repository) int { return strings.Compare(a.Path, b.Path) })
	return out
}

func sortedTags(rp *repo) []string {
	tags := make([]string, 0, len(rp.tags))
	for t := range rp.tags {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	return tags
}

// A repository name, and one component of it, as the distribution spec
// has them.
var (
	nameRE      = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	componentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
)

// Server is an http.Server for r with its connection timeouts; the
// caller sets TLS and serves.
func (r *Registry) Server() *http.Server {
	return &http.Server{Handler: r, ReadHeaderTimeout: r.readHeaderTimeout, IdleTimeout: r.idleTimeout}
}

// progressWriter gives every piece of a response its own write deadline:
// a stalled client is cut, a slow one that keeps reading is not.
type progressWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	stall time.Duration
}

func (w *progressWriter) Write(p []byte) (int, error) {
	var n int
	for len(p) > 0 {
		piece := p[:min(len(p), writeChunk)]
		// ErrNotSupported (a writer without a connection) leaves the
		// write without a deadline, as before.
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.stall))
		m, err := w.ResponseWriter.Write(piece)
		n += m
		if err != nil {
			return n, err
		}
		p = p[len(piece):]
	}
	return n, nil
}

// Unwrap lets http.ResponseController reach the connection.
func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP answers the read-only part of the distribution API.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w = &progressWriter{ResponseWriter: w, rc: http.NewResponseController(w), stall: r.writeStallTimeout}
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		apiError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "this registry is read-only")
		return
	}
	p := req.URL.Path
	if p == "/v2/" || p == "/v2" {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if req.Method == http.MethodGet {
			io.WriteString(w, "{}")
		}
		return
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		apiError(w, http.StatusNotFound, "UNSUPPORTED", "not a registry API path")
		return
	}
	if name, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		if rp := r.repo(w, name, req.URL.Query().Get("ns")); rp != nil {
			serveTags(w, req, name, rp)
		}
		return
	}
	if i := strings.LastIndex(rest, "/referrers/"); i >= 0 {
		if rp := r.repo(w, rest[:i], req.URL.Query().Get("ns")); rp != nil {
			serveReferrers(w, req, rp, rest[i+len("/referrers/"):])
		}
		return
	}
	var name, kind, ref string
	for _, k := range []string{"/manifests/", "/blobs/"} {
		if i := strings.LastIndex(rest, k); i >= 0 {
			name, kind, ref = rest[:i], k, rest[i+len(k):]
			break
		}
	}
	if kind == "" {
		apiError(w, http.StatusNotFound, "UNSUPPORTED", "not a registry API path")
		return
	}
	rp := r.repo(w, name, req.URL.Query().Get("ns"))
	if rp == nil {
		return
	}
	if kind == "/blobs/" {
		r.serveBlob(w, req, rp, ref)
		return
	}
	r.serveManifest(w, req, rp, ref)
}

// repo finds a repository, or answers 404 NAME_UNKNOWN. Repositories are
// kept under their per-host paths (image.PerHostPath): the full name for a
// host without a port (docker.io/library/busybox), the port's ":" made "_"
// otherwise (127.0.0.1_5000/bench/multiarch), as push --to-per-host names
// them; a client asks by that path. A containerd or k3s node that uses this
// registry as the mirror of another one asks by the path on that registry
// (library/busybox, bench/multiarch) and says which registry in the "ns"
// query parameter (?ns=docker.io, ?ns=127.0.0.1:5000). Without ns, a path
// that is not served is looked up on docker.io, as docker would.
func (r *Registry) repo(w http.ResponseWriter, name, ns string) *repo {
	if !nameRE.MatchString(name) {
		apiError(w, http.StatusNotFound, "NAME_UNKNOWN", "invalid repository name")
		return nil
	}
	var rp *repo
	if ns != "" {
		if hc := image.HostComponent(ns); componentRE.MatchString(hc) {
			rp = r.repos[hc+"/"+name]
		}
		// A mirror whose path a rewrite made per-host already (k3s's
		// registries.yaml rewrite, as push writes it) still sends ns.
		if rp == nil {
			rp = r.repos[name]
		}
	} else if rp = r.repos[name]; rp == nil {
		rp = r.repos["docker.io/"+name]
	}
	if rp == nil {
		apiError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
	}
	return rp
}

var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

func (r *Registry) serveManifest(w http.ResponseWriter, req *http.Request, rp *repo, ref string) {
	var d digest.Digest
	var mt image.MediaType
	if tagRE.MatchString(ref) {
		top, ok := rp.tags[ref]
		if !ok {
			apiError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
			return
		}
		d, mt = top.Digest, top.MediaType
	} else {
		var err error
		if d, err = digest.Parse(ref); err != nil {
			apiError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "invalid tag or digest")
			return
		}
		var ok bool
		if mt, ok = rp.manifests[d]; !ok {
			apiError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
			return
		}
	}
	loc, ok := r.blobs[d]
	if !ok {
		apiError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
		return
	}
	w.Header().Set("Content-Type", string(mt))
	w.Header().Set("Docker-Content-Digest", d.String())
	r.serveLocation(w, req, loc)
}

func (r *Registry) serveBlob(w http.ResponseWriter, req *http.Request, rp *repo, ref string) {
	d, err := digest.Parse(ref)
	if err != nil {
		apiError(w, http.StatusBadRequest, "DIGEST_INVALID", "invalid digest")
		return
	}
	loc, ok := r.blobs[d]
	if !ok || !rp.blobs[d] {
		apiError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Etag", `"`+d.String()+`"`)
	r.serveLocation(w, req, loc)
}

// serveLocation serves a blob from the first archive holding it that is
// as it was read, or answers 503 when every one has changed on disk.
func (r *Registry) serveLocation(w http.ResponseWriter, req *http.Request, locs []location) {
	for _, loc := range locs {
		if !loc.file.intact(r.log) {
			continue
		}
		serveContent(w, req, io.NewSectionReader(loc.file.f, loc.off, loc.size))
		// A truncation while the body was sent cut it short (the client
		// sees the connection close before Content-Length); later
		// requests are refused.
		loc.file.intact(r.log)
		return
	}
	for _, k := range []string{"Docker-Content-Digest", "Etag"} {
		w.Header().Del(k)
	}
	apiError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "the archive holding this content changed on disk after serve read it: it is no longer served (the server's log names the archive)")
}

func serveBytes(w http.ResponseWriter, req *http.Request, ct string, body []byte) {
	w.Header().Set("Content-Type", ct)
	serveContent(w, req, bytes.NewReader(body))
}

// serveContent is http.ServeContent (ranges, conditional requests) with
// its errors as registry JSON errors, like every other error here.
func serveContent(w http.ResponseWriter, req *http.Request, content io.ReadSeeker) {
	http.ServeContent(&jsonErrors{ResponseWriter: w}, req, "", time.Time{}, content)
}

// jsonErrors turns the plain-text errors http.ServeContent writes (416 for
// a range the content cannot satisfy, 412 for a failed precondition) into
// registry JSON errors; the Content-Range of a 416 stays.
type jsonErrors struct {
	http.ResponseWriter
	failed bool
}

func (w *jsonErrors) WriteHeader(code int) {
	if code < 400 {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.failed = true
	for _, k := range []string{"Docker-Content-Digest", "Etag", "X-Content-Type-Options"} {
		w.Header().Del(k)
	}
	switch code {
	case http.StatusRequestedRangeNotSatisfiable:
		apiError(w.ResponseWriter, code, "RANGE_INVALID", "requested range not satisfiable (Content-Range gives the size)")
	default:
		apiError(w.ResponseWriter, code, "UNKNOWN", http.StatusText(code))
	}
}

func (w *jsonErrors) Write(p []byte) (int, error) {
	if w.failed {
		return len(p), nil // ServeContent's text/plain body, replaced
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *jsonErrors) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// apiError writes a registry-style JSON error.
func apiError(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// serveTags answers tags/list, paginated as the distribution spec says:
// tags in lexical order, those after "last" when given, at most "n" when
// given, and a Link header to the next page when there are more.
func serveTags(w http.ResponseWriter, req *http.Request, name string, rp *repo) {
	q := req.URL.Query()
	tags := sortedTags(rp)
	if last := q.Get("last"); last != "" {
		i, found := slices.BinarySearch(tags, last)
		if found {
			i++
		}
		tags = tags[i:]
	}
	if s := q.Get("n"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			apiError(w, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "n must be a number of tags (0 or more)")
			return
		}
		// n = 0 asks for nothing: an empty list, and no next page that
		// would ask for nothing again.
		if n < len(tags) {
			tags = tags[:n]
			if n > 0 {
				next := url.Values{}
				for k, v := range q {
					next[k] = v // ns stays
				}
				next.Set("n", s)
				next.Set("last", tags[n-1])
				w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, req.URL.EscapedPath(), next.Encode()))
			}
		}
	}
	body, _ := json.Marshal(struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{name, tags})
	serveBytes(w, req, "application/json", body)
}

// referrerOf describes a carried referrer as the referrers API lists it:
// its artifactType (else its config's media type) and annotations, from
// the manifest in the archive.
func referrerOf(c *archive.Contents, top image.Descriptor) referrer {
	ref := referrer{MediaType: top.MediaType, Digest: top.Digest, Size: top.Size}
	if doc, ok := c.BlobDocument(top.Digest); ok {
		var m struct {
			ArtifactType string                     `json:"artifactType"`
			Config       struct{ MediaType string } `json:"config"`
			Annotations  map[string]string          `json:"annotations"`
		}
		if json.Unmarshal(doc, &m) == nil {
			ref.ArtifactType, ref.Annotations = m.ArtifactType, m.Annotations
			if ref.ArtifactType == "" {
				ref.ArtifactType = m.Config.MediaType
			}
		}
	}
	return ref
}

// serveReferrers answers the OCI 1.1 referrers API from the carried
// referrers of subject (an empty index when there are none), filtered by
// the artifactType query parameter when given.
func serveReferrers(w http.ResponseWriter, req *http.Request, rp *repo, subject string) {
	d, err := digest.Parse(subject)
	if err != nil {
		apiError(w, http.StatusBadRequest, "DIGEST_INVALID", "the referrers API takes a digest")
		return
	}
	list := slices.Clone(rp.referrers[d])
	slices.SortFunc(list, func(a, b referrer) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	if at := req.URL.Query().Get("artifactType"); at != "" {
		list = slices.DeleteFunc(list, func(x referrer) bool { return x.ArtifactType != at })
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	if list == nil {
		list = []referrer{}
	}
	body, _ := json.Marshal(struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     image.MediaType `json:"mediaType"`
		Manifests     []referrer      `json:"manifests"`
	}{2, image.OCIIndex, list})
	serveBytes(w, req, string(image.OCIIndex), body)
}
