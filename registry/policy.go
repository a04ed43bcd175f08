package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/airgap-bundle/airgap-bundle/internal/logs"
)

// Policy is how a run treats slow and failing registries. An air-gap bundle
// is often built once over a poor link: a transient failure is retried with
// exponential backoff and full jitter, and a request that hangs is cut off
// instead of waiting forever.
type Policy struct {
	// Attempts per request, the first included (default 5; 1 disables
	// retries).
	Attempts int
	// ResponseTimeout bounds the time from sending a request (connecting
	// included) to its response headers (default 60s). containers/image's
	// own dialer gives up connecting after 30s whatever this says.
	ResponseTimeout time.Duration
	// StallTimeout bounds the time a response body may send no bytes
	// (default 60s).
	StallTimeout time.Duration
	// Backoff is the wait before the second attempt (default 1s); it
	// doubles for each further attempt, up to MaxBackoff (default 30s), and
	// each wait is drawn uniformly from [0, that bound] so parallel
	// downloads do not retry in lockstep.
	Backoff, MaxBackoff time.Duration
	// Logger receives one Info line per retry, with the attempt number.
	Logger *slog.Logger
}

// Defaults of Policy, documented in docs/build.md (retries and timeouts).
const (
	DefaultAttempts        = 5
	DefaultResponseTimeout = 60 * time.Second
	DefaultStallTimeout    = 60 * time.Second
	DefaultBackoff         = time.Second
	DefaultMaxBackoff      = 30 * time.Second
)

// WithDefaults fills the zero fields.
func (p Policy) WithDefaults() Policy {
	if p.Attempts <= 0 {
		p.Attempts = DefaultAttempts
	}
	if p.ResponseTimeout <= 0 {
		p.ResponseTimeout = DefaultResponseTimeout
	}
	if p.StallTimeout <= 0 {
		p.StallTimeout = DefaultStallTimeout
	}
	if p.Backoff <= 0 {
		p.Backoff = DefaultBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultMaxBackoff
	}
	p.Logger = logs.OrDiscard(p.Logger)
	return p
}

// Errors a Policy produces, or its callers mark. All are transient.
var (
	ErrResponseTimeout = errors.New("no response from the registry")
	ErrStalled         = errors.New("download stalled")
	// ErrCorruptBody marks a download whose bytes did not match their
	// digest: damaged on the way, so worth one more try from the start.
	ErrCorruptBody = errors.New("downloaded content does not match its digest")
)

// Do runs op until it succeeds, fails with an error that is not transient,
// or has run Attempts times. what names the request in log lines.
func (p Policy) Do(ctx context.Context, what string, op func(context.Context) error) error {
	p = p.WithDefaults()
	var err error
	for attempt := 1; ; attempt++ {
		err = op(ctx)
		if err == nil || !Transient(err) || attempt >= p.Attempts || ctx.Err() != nil {
			if err != nil && attempt > 1 && Transient(err) && ctx.Err() == nil {
				return fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
			}
			return err
		}
		wait := p.backoff(attempt)
		var ra *RetryAfterError
		if errors.As(err, &ra) && ra.Wait > wait {
			wait = min(ra.Wait, p.MaxBackoff)
		}
		p.Logger.Info("retrying", "request", what, "attempt", attempt+1, "of", p.Attempts, "after", wait.Round(time.Millisecond), "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

func (p Policy) backoff(attempt int) time.Duration {
	bound := p.Backoff << (attempt - 1)
	if bound <= 0 || bound > p.MaxBackoff {
		bound = p.MaxBackoff
	}
	return time.Duration(rand.Int64N(int64(bound) + 1))
}

// RetryAfterError is a refusal that said when to come back (HTTP 429 or
// 503 with Retry-After): Do waits at least that long (up to MaxBackoff).
type RetryAfterError struct {
	Wait time.Duration
	Err  error
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// Watch bounds one streamed request: it returns a context for the request
// and a function to wrap its body. Until the body is wrapped, the request
// must produce its response within ResponseTimeout; after, the body must
// deliver a byte at least every StallTimeout. When either bound is hit the
// request's context is cancelled and its error becomes ErrResponseTimeout
// or ErrStalled. stop releases the timer; call it when done.
func (p Policy) Watch(ctx context.Context) (reqCtx context.Context, wrap func(io.ReadCloser) io.ReadCloser, classify func(error) error, stop func()) {
	p = p.WithDefaults()
	reqCtx, cancel := context.WithCancel(ctx)
	w := &watch{cancel: cancel, stall: p.StallTimeout}
	w.phase = ErrResponseTimeout
	w.timer = time.AfterFunc(p.ResponseTimeout, w.fire)
	wrap = func(rc io.ReadCloser) io.ReadCloser {
		w.mu.Lock()
		w.phase = ErrStalled
		w.mu.Unlock()
		w.timer.Reset(p.StallTimeout)
		return &watchedBody{rc: rc, w: w}
	}
	classify = func(err error) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil && w.fired && ctx.Err() == nil {
			return fmt.Errorf("%w: %w", w.phase, err)
		}
		return err
	}
	stop = func() {
		w.timer.Stop()
		cancel()
	}
	return reqCtx, wrap, classify, stop
}

type watch struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	timer  *time.Timer
	stall  time.Duration
	phase  error
	fired  bool
}

func (w *watch) fire() {
	w.mu.Lock()
	w.fired = true
	w.mu.Unlock()
	w.cancel()
}

// watchedBody pushes the stall deadline back on every byte received.
type watchedBody struct {
	rc io.ReadCloser
	w  *watch
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.w.timer.Reset(b.w.stall)
	}
	return n, err
}

func (b *watchedBody) Close() error { return b.rc.Close() }

// WatchedBody ties a response body to the Watch its request ran under: a
// read error is classified (the watchdog's cancellations become
// ErrResponseTimeout and ErrStalled), and Close releases the watch. rc is
// the body already wrapped by Watch's wrap.
func WatchedBody(rc io.ReadCloser, classify func(error) error, stop func()) io.ReadCloser {
	return &boundBody{rc: rc, classify: classify, stop: stop}
}

type boundBody struct {
	rc       io.ReadCloser
	classify func(error) error
	stop     func()
}

func (w *boundBody) Read(p []byte) (int, error) {
	n, err := w.rc.Read(p)
	if err != nil && err != io.EOF {
		err = w.classify(err)
	}
	return n, err
}

func (w *boundBody) Close() error {
	err := w.rc.Close()
	w.stop()
	return err
}
