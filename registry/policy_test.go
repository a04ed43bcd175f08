package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"go.podman.io/image/v5/docker"
)

func TestTransient(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{context.Canceled, false},
		{fmt.Errorf("fetching: %w", context.Canceled), false},
		{errors.New("manifest unknown"), false},
		{docker.UnexpectedHTTPStatusError{StatusCode: 503}, true},
		{docker.UnexpectedHTTPStatusError{StatusCode: 404}, false},
		{docker.ErrTooManyRequests, true},
		{io.ErrUnexpectedEOF, true},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, false},
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{ErrStalled, true},
		{fmt.Errorf("%w: %w", ErrResponseTimeout, context.Canceled), true},
		{ErrCorruptBody, true},
		{errors.New(`fetching blob: StatusCode: 502, "bad gateway"`), true},
		{errors.New(`resuming download: status 408`), true},
		{errors.New(`StatusCode: 401, "unauthorized"`), false},
	}
	for _, c := range cases {
		if got := Transient(c.err); got != c.want {
			t.Errorf("Transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestDoRetriesTransientErrorsOnly(t *testing.T) {
	p := Policy{Attempts: 4, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	cases := []struct {
		name      string
		errs      []error // returned by successive calls; nil after the list
		wantCalls int
		wantErr   bool
	}{
		{"ok at once", nil, 1, false},
		{"two 503 then ok", []error{docker.UnexpectedHTTPStatusError{StatusCode: 503}, io.ErrUnexpectedEOF}, 3, false},
		{"not transient", []error{errors.New("manifest unknown")}, 1, true},
		{"always failing", []error{ErrStalled, ErrStalled, ErrStalled, ErrStalled, ErrStalled}, 4, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			err := p.Do(context.Background(), "test", func(context.Context) error {
				calls++
				if calls <= len(c.errs) {
					return c.errs[calls-1]
				}
				return nil
			})
			if calls != c.wantCalls || (err != nil) != c.wantErr {
				t.Errorf("%d calls, error %v; want %d calls, error %v", calls, err, c.wantCalls, c.wantErr)
			}
		})
	}
	// Cancellation stops the waiting at once.
	ctx, cancel := context.WithCancel(context.Background())
	slow := Policy{Attempts: 3, Backoff: time.Hour, MaxBackoff: time.Hour}
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	start := time.Now()
	if err := slow.Do(ctx, "test", func(context.Context) error { return ErrStalled }); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("cancelled retry wait: %v after %s", err, time.Since(start))
	}
}

// A server that never answers, and one that stops sending: each is cut off
// by its own timeout, with its own error.
func TestWatch(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/silent":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/stall":
			w.Header().Set("Content-Length", "100")
			w.Write(make([]byte, 10))
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/ok":
			w.Write([]byte("hello"))
		}
	}))
	defer srv.Close()
	p := Policy{ResponseTimeout: 200 * time.Millisecond, StallTimeout: 200 * time.Millisecond}
	get := func(path string) (string, error) {
		ctx, wrap, classify, stop := p.Watch(context.Background())
		defer stop()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", classify(err)
		}
		body := wrap(res.Body)
		defer body.Close()
		b, err := io.ReadAll(body)
		return string(b), classify(err)
	}
	if _, err := get("/silent"); !errors.Is(err, ErrResponseTimeout) || !Transient(err) {
		t.Errorf("silent server: %v", err)
	}
	if _, err := get("/stall"); !errors.Is(err, ErrStalled) || !Transient(err) {
		t.Errorf("stalled body: %v", err)
	}
	if b, err := get("/ok"); err != nil || b != "hello" {
		t.Errorf("ok: %q, %v", b, err)
	}
	// The caller's own cancellation is not a timeout.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	reqCtx, _, classify, stop := p.Watch(ctx)
	defer stop()
	req, _ := http.NewRequestWithContext(reqCtx, http.MethodGet, srv.URL+"/ok", nil)
	_, err := http.DefaultClient.Do(req)
	if err = classify(err); !errors.Is(err, context.Canceled) || Transient(err) {
		t.Errorf("cancelled by the caller: %v", err)
	}
}

func TestDoHonoursRetryAfter(t *testing.T) {
	p := Policy{Attempts: 2, Backoff: time.Millisecond, MaxBackoff: time.Second}
	calls := 0
	start := time.Now()
	err := p.Do(context.Background(), "test", func(context.Context) error {
		calls++
		if calls == 1 {
			return &RetryAfterError{Wait: 300 * time.Millisecond, Err: errors.New("downloading blob: status 429")}
		}
		return nil
	})
	if err != nil || calls != 2 || time.Since(start) < 300*time.Millisecond {
		t.Errorf("%d calls, %v, after %s: want the second call after the server's 300ms", calls, err, time.Since(start))
	}
}
