package bundler

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/registry"
)

// stream.go: build --no-cache. A layer that one archive needs, and that is
// big enough to matter, goes from the registry straight into the archive,
// hashed on the way, never into a cache: in CI the cache is thrown away
// with the runner, and writing every byte twice is the cost the issue
// measured. A dropped connection resumes with a range request from the
// byte where the archive's copy stopped (the bytes already written stay
// written and hashed); a blob whose bytes do not match its digest fails
// the archive, whose temporary file is then removed.

// streamMin is the smallest blob streamed under --no-cache; smaller ones
// (configs, small layers) are fetched in parallel into the run's
// temporary store first, as with a cache: one at a time through the
// writer, their round trips would cost more than their second write.
const streamMin = 4 << 20

// streamReader reads one blob from the registry, resuming after transient
// failures, and fails at EOF unless the bytes match the blob's digest.
type streamReader struct {
	ctx    context.Context
	n      blobNeed
	fetch  Fetcher
	policy registry.Policy
	h      hash.Hash
	rc     io.ReadCloser
	off    int64
	fails  int // consecutive failed attempts
}

func newStreamReader(ctx context.Context, n blobNeed, f Fetcher, p registry.Policy) *streamReader {
	return &streamReader{ctx: ctx, n: n, fetch: f, policy: p.WithDefaults(), h: n.desc.Digest.Algorithm().Hash()}
}

func (s *streamReader) Read(p []byte) (int, error) {
	for {
		if s.off == s.n.desc.Size {
			if d := s.sum(); d != s.n.desc.Digest.Encoded() {
				return 0, fmt.Errorf("%w: blob %s from %s hashes to sha256:%s", cache.ErrDigest, s.n.desc.Digest, s.n.ref.Name(), d)
			}
			return 0, io.EOF
		}
		if s.rc == nil {
			rc, err := s.fetch.Blob(s.ctx, s.n.ref, s.n.top, s.n.desc.Digest, s.n.desc.Size, s.off)
			if err != nil {
				if err := s.retry(err); err != nil {
					return 0, err
				}
				continue
			}
			s.rc = rc
		}
		limit := min(int64(len(p)), s.n.desc.Size-s.off)
		k, err := s.rc.Read(p[:limit])
		if k > 0 {
			s.h.Write(p[:k])
			s.off += int64(k)
			s.fails = 0
		}
		if errors.Is(err, io.EOF) && s.off < s.n.desc.Size {
			err = io.ErrUnexpectedEOF // the body ended early: resume
		}
		if err != nil && !errors.Is(err, io.EOF) {
			s.rc.Close()
			s.rc = nil
			if rerr := s.retry(err); rerr != nil {
				return k, rerr
			}
		}
		if k > 0 {
			return k, nil
		}
	}
}

// retry waits before the next attempt, or says why there is none.
func (s *streamReader) retry(err error) error {
	s.fails++
	if !registry.Transient(err) || s.fails >= s.policy.Attempts || s.ctx.Err() != nil {
		return fmt.Errorf("blob %s from %s, at byte %d of %d: %w", s.n.desc.Digest, s.n.ref.Name(), s.off, s.n.desc.Size, err)
	}
	wait := s.policy.Backoff << (s.fails - 1)
	wait = min(wait, s.policy.MaxBackoff)
	s.policy.Logger.Info("resuming a streamed blob", "blob", s.n.desc.Digest, "at", s.off, "of", s.n.desc.Size, "attempt", s.fails+1, "error", err)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

func (s *streamReader) sum() string { return fmt.Sprintf("%x", s.h.Sum(nil)) }

func (s *streamReader) Close() error {
	if s.rc != nil {
		return s.rc.Close()
	}
	return nil
}
