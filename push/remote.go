package push

// The client side. go-containerregistry's remote package, not
// containers/image's docker ImageDestination: remote.Pusher.Upload does the
// blob HEAD (skip), the cross-repository mount (POST ?mount=&from=, with
// its fallback to an upload when the registry answers 202) and the upload
// in one call, and Pusher.Put sends a manifest's raw bytes as given, so
// digests cannot change; remote.Puller.Head answers "is this digest or tag
// there". containers/image would need its BlobInfoCache primed with known
// locations to mount, offers no manifest HEAD on a destination, and its
// PutManifest path is built around copy's conversions. The transport under
// both is the run's (registry.Env.Target): TLS and credentials from the
// spec or the standard files, every request bounded by the Policy.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/image"
)

// blobLayer is a blob read in place from an archive file, as the v1.Layer
// remote uploads (only Digest, Size, MediaType and Compressed are used).
type blobLayer struct {
	d    digest.Digest
	size int64
	mt   image.MediaType
	src  blobSource
	read func(int64) // bytes sent, for progress
	// sent counts the bytes read into the last request body. An upload is
	// counted where its bytes leave the archive, not by the URL they went
	// to: a registry may hand uploads to another host, under any path.
	// Each body starts at zero (a retry, or net/http's GetBody when it
	// replays a body), so after a successful Upload it holds what the
	// registry accepted, and zero when the blob was there or mounted.
	sent atomic.Int64
}

var errNotNeeded = errors.New("push: not needed to upload a blob")

// errLeftOut is the upload of a blob whose bytes push does not have: one
// a delta leaves out, which the registry answered a mount of with an
// upload session (it did not mount it).
var errLeftOut = errors.New("the registry did not mount the blob, and the delta does not hold its bytes")

func (l *blobLayer) Digest() (v1.Hash, error) { return v1.NewHash(l.d.String()) }
func (l *blobLayer) DiffID() (v1.Hash, error) { return v1.Hash{}, errNotNeeded }
func (l *blobLayer) Size() (int64, error)     { return l.size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error) {
	if l.mt == "" {
		return types.MediaType("application/octet-stream"), nil
	}
	return types.MediaType(l.mt), nil
}
func (l *blobLayer) Uncompressed() (io.ReadCloser, error) { return nil, errNotNeeded }
func (l *blobLayer) Compressed() (io.ReadCloser, error) {
	if l.src.file == nil {
		// A blob a delta leaves out, which the registry would not mount.
		return nil, errLeftOut
	}
	l.sent.Store(0)
	add := func(n int64) {
		l.sent.Add(n)
		if l.read != nil {
			l.read(n)
		}
	}
	return io.NopCloser(&countingReader{r: io.NewSectionReader(l.src.file, l.src.off, l.src.size), add: add}), nil
}

func remoteLayer(l *blobLayer) v1.Layer { return l }

type countingReader struct {
	r   io.Reader
	add func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && c.add != nil {
		c.add(int64(n))
	}
	return n, err
}

// raw is a manifest or index as stored, for remote.Put: its bytes and
// media type, nothing re-encoded.
type raw struct {
	b  []byte
	mt types.MediaType
}

func (r raw) RawManifest() ([]byte, error)        { return r.b, nil }
func (r raw) MediaType() (types.MediaType, error) { return r.mt, nil }

func rawManifest(d doc) remote.Taggable { return raw{b: d.raw, mt: types.MediaType(d.desc.MediaType)} }

// observer notes, under go-containerregistry's transport, what the
// registry answered: a blob HEAD 200 (already there), a mount 201, and the
// Docker-Content-Digest of a manifest PUT (see expectManifest). It also
// records the scheme that was used. Uploads are counted by blobLayer.
type observer struct {
	base http.RoundTripper

	existing, mounted atomic.Int64

	mu   sync.Mutex
	used string
}

func (o *observer) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := o.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if strings.HasPrefix(req.URL.Path, "/v2/") {
		o.mu.Lock()
		o.used = req.URL.Scheme
		o.mu.Unlock()
	}
	p := req.URL.Path
	if req.Context().Value(probeKey{}) != nil {
		return resp, nil // resolveFromBase counts its own findings
	}
	switch {
	case req.Method == http.MethodHead && strings.Contains(p, "/blobs/") && resp.StatusCode == http.StatusOK:
		o.existing.Add(1)
	case req.Method == http.MethodPost && strings.HasSuffix(p, "/blobs/uploads/") && req.URL.Query().Get("mount") != "" && resp.StatusCode == http.StatusCreated:
		o.mounted.Add(1)
	case req.Method == http.MethodPut:
		// Only the PUT of the manifest itself: go-containerregistry may
		// PUT a referrers tag index too, under the same context.
		if a, ok := req.Context().Value(answerKey{}).(*manifestAnswer); ok && p == a.path && resp.StatusCode < 300 {
			a.mu.Lock()
			a.digest = resp.Header.Get("Docker-Content-Digest")
			a.mu.Unlock()
		}
	}
	return resp, nil
}

type answerKey struct{}

// manifestAnswer is the Docker-Content-Digest a registry answered the PUT
// of one manifest with ("" when it sent none).
type manifestAnswer struct {
	path   string // /v2/<repository>/manifests/<tag or digest>
	mu     sync.Mutex
	digest string
}

// expectManifest returns a context under which the observer records the
// registry's answer to the PUT of ref.
func expectManifest(ctx context.Context, ref name.Reference) (context.Context, *manifestAnswer) {
	a := &manifestAnswer{path: "/v2/" + ref.Context().RepositoryStr() + "/manifests/" + ref.Identifier()}
	return context.WithValue(ctx, answerKey{}, a), a
}

func (a *manifestAnswer) answered() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.digest
}

func (o *observer) scheme() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.used
}
