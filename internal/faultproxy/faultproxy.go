// Package faultproxy is an HTTP proxy for tests that sits in front of a real
// registry (internal/testregistry) and injects faults on a schedule: error
// statuses with Retry-After, connection resets and clean cuts mid-body, slow
// and stalled bodies, a flipped byte, an edited response header, a 401 in
// the middle of a run, and a listener that never answers (Blackhole); Forward
// reaches a registry under another address, its TLS passed through.
//
// The registry stays real so that what a test exercises is the client's
// handling of the failure, not a fake's idea of the protocol; the proxy only
// breaks the transport in controlled, countable ways.
//
//	reg := testregistry.Start(t, testregistry.Options{})
//	px := faultproxy.Start(t, reg.Host)
//	px.Add(faultproxy.Rule{Method: "GET", Path: "/blobs/sha256:", When: faultproxy.Nth(1),
//		Fault: faultproxy.ResetAfter(4096)})
//	// point the client at px.Host (plain HTTP: insecure = true) ...
//	if n := px.Stats().Count("GET", faultproxy.KindBlobs); n != 2 { t.Errorf("...\n%s", px.LogString()) }
//
// Bodies are streamed and flushed as they arrive, never buffered whole, so
// byte offsets and timings seen by the client are those of the schedule.
package faultproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// slowTick is the granularity of Slow: one chunk per tick.
	slowTick = 100 * time.Millisecond
	// resetPause lets the client read the bytes sent before a reset, so it
	// usually sees them before the RST discards its receive queue.
	resetPause = 50 * time.Millisecond
	// drainTimeout bounds how long cleanup waits for handlers to return.
	drainTimeout = 5 * time.Second
)

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	// Host is "127.0.0.1:PORT", where clients connect (plain HTTP).
	Host string
	// Upstream is the registry's host:port requests are forwarded to.
	Upstream string

	t        testing.TB
	scheme   string // of the upstream
	rt       *http.Transport
	srv      *http.Server
	done     chan struct{} // closed at cleanup: releases Hang and stalls
	handlers sync.WaitGroup

	mu        sync.Mutex
	rules     []*Handle
	seq       int
	log       []Entry
	stats     Stats
	challenge *string // upstream's WWW-Authenticate for anonymous /v2/, once probed
}

// Option configures Start.
type Option func(*Proxy)

// WithRules adds rules at start, as Add would.
func WithRules(rules ...Rule) Option {
	return func(p *Proxy) {
		for _, r := range rules {
			p.Add(r)
		}
	}
}

// UpstreamTLS makes the proxy talk HTTPS to the upstream, trusting pool
// (e.g. testregistry's Registry.CAPool()), so a registry with htpasswd auth
// can sit behind it. The proxy itself still serves plain HTTP.
func UpstreamTLS(pool *x509.CertPool) Option {
	return func(p *Proxy) {
		p.scheme = "https"
		p.rt.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
}

// Start starts a proxy on a free port of 127.0.0.1 forwarding to upstream
// ("host:port", plain HTTP unless UpstreamTLS), and stops it when the test
// ends, logging the request log if the test failed.
func Start(t testing.TB, upstream string, opts ...Option) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faultproxy: %v", err)
	}
	p := &Proxy{
		Host:     ln.Addr().String(),
		Upstream: upstream,
		t:        t,
		scheme:   "http",
		done:     make(chan struct{}),
		rt: &http.Transport{
			Proxy:               nil, // never an environment proxy: tests are hermetic
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			DisableCompression:  true, // forward bodies byte for byte
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     30 * time.Second,
		},
		stats: newStats(),
	}
	for _, o := range opts {
		o(p)
	}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 30 * time.Second,
		// Clients hanging up on faults make the server log; the request log
		// is the record that matters.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() { _ = p.srv.Serve(ln) }()
	t.Cleanup(func() {
		close(p.done)
		_ = p.srv.Close()
		waitTimeout(&p.handlers, drainTimeout)
		p.rt.CloseIdleConnections()
		if t.Failed() {
			t.Logf("faultproxy %s -> %s: %s\n%s", p.Host, p.Upstream, p.Stats(), p.LogString())
		}
	})
	return p
}

// URL is "http://" + Host.
func (p *Proxy) URL() string { return "http://" + p.Host }

// Add schedules a fault and returns a handle that counts its hits. A rule
// whose Path is not a valid regular expression fails the test.
func (p *Proxy) Add(r Rule) *Handle {
	h := &Handle{p: p, rule: r}
	if r.Path != "" {
		re, err := regexp.Compile(r.Path)
		if err != nil {
			p.t.Fatalf("faultproxy: rule path %q: %v", r.Path, err)
		}
		h.re = re
	}
	p.mu.Lock()
	p.rules = append(p.rules, h)
	p.mu.Unlock()
	return h
}

// ClearRules removes every rule: from now on requests are forwarded intact
// ("the network heals").
func (p *Proxy) ClearRules() {
	p.mu.Lock()
	p.rules = nil
	p.mu.Unlock()
}

// ResetCounters zeroes the counters and empties the log, e.g. after pushing
// fixtures through the proxy, so a test counts only its own requests. Rules
// keep their own match counts.
func (p *Proxy) ResetCounters() {
	p.mu.Lock()
	p.stats = newStats()
	p.log = nil
	p.mu.Unlock()
}

// Stats returns a snapshot of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Requests = make(map[Key]int, len(p.stats.Requests))
	for k, v := range p.stats.Requests {
		s.Requests[k] = v
	}
	s.BytesSent = make(map[string]int64, len(p.stats.BytesSent))
	for k, v := range p.stats.BytesSent {
		s.BytesSent[k] = v
	}
	s.Ranges = append([]string(nil), p.stats.Ranges...)
	return s
}

// Log returns a copy of the request log, in arrival order. Requests still in
// flight show what has happened so far.
func (p *Proxy) Log() []Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Entry(nil), p.log...)
}

// LogString renders the log one request a line, for failure messages.
func (p *Proxy) LogString() string {
	var b strings.Builder
	for _, e := range p.Log() {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func newStats() Stats {
	return Stats{Requests: map[Key]int{}, BytesSent: map[string]int64{}}
}

// admit records the request and returns its log entry's index and sequence
// number and the rule that fires on it, if any.
func (p *Proxy) admit(r *http.Request) (int, int, *Handle) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	e := Entry{Seq: p.seq, Method: r.Method, Path: r.URL.Path, Range: r.Header.Get("Range"), Start: time.Now()}
	p.stats.Requests[Key{r.Method, PathKind(r.URL.Path)}]++
	if e.Range != "" {
		p.stats.RangeRequests++
		p.stats.Ranges = append(p.stats.Ranges, e.Range)
	}
	var fire *Handle
	for _, h := range p.rules {
		if !h.matches(r.Method, r.URL.Path) {
			continue
		}
		h.matched++
		if fire == nil && h.rule.When.selects(h.matched) {
			fire = h
		}
	}
	if fire != nil {
		fire.fired++
		p.stats.Faults++
		e.Fault = fire.name()
	}
	if fire == nil || fire.rule.Fault.contactsUpstream() {
		p.stats.Upstream++
	}
	p.log = append(p.log, e)
	return len(p.log) - 1, e.Seq, fire
}

// update edits the log entry idx, unless ResetCounters dropped it.
func (p *Proxy) update(idx, seq int, f func(*Entry)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if idx < len(p.log) && p.log[idx].Seq == seq {
		f(&p.log[idx])
	}
}

// sent counts n body bytes sent for request (idx, seq) on path.
func (p *Proxy) sent(idx, seq int, path string, n int64) {
	if n <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.BytesSent[path] += n
	if idx < len(p.log) && p.log[idx].Seq == seq {
		p.log[idx].Bytes += n
	}
}

// request is the state of one request being handled.
type request struct {
	p        *Proxy
	idx, seq int
	path     string
}

func (q request) status(code int)              { q.p.update(q.idx, q.seq, func(e *Entry) { e.Status = code }) }
func (q request) fail(err error)               { q.p.update(q.idx, q.seq, func(e *Entry) { e.Err = err.Error() }) }
func (q request) sent(n int64)                 { q.p.sent(q.idx, q.seq, q.path, n) }
func (q request) note(format string, a ...any) { q.fail(fmt.Errorf(format, a...)) }

// ServeHTTP forwards one request, applying the fault scheduled for it.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.handlers.Add(1)
	defer p.handlers.Done()
	idx, seq, h := p.admit(r)
	q := request{p: p, idx: idx, seq: seq, path: r.URL.Path}
	defer p.update(idx, seq, func(e *Entry) { e.End = time.Now() })
	var f Fault
	if h != nil {
		f = h.rule.Fault
	}

	switch f.kind {
	case kStatus:
		if f.retryAfter > 0 {
			w.Header().Set("Retry-After", f.retryAfterSeconds())
		}
		p.writeError(w, q, f.status, errorCode(f.status), fmt.Sprintf("faultproxy: injected %d", f.status))
		return
	case kUnauthorized:
		if c := p.upstreamChallenge(r.Context()); c != "" {
			w.Header().Set("WWW-Authenticate", c)
		}
		p.writeError(w, q, http.StatusUnauthorized, "UNAUTHORIZED", "faultproxy: injected 401")
		return
	case kHang:
		p.wait(r.Context())
		q.note("hung until the client left or the test ended")
		return
	}

	resp, err := p.forward(r)
	if err != nil {
		q.fail(err)
		p.writeError(w, q, http.StatusBadGateway, "UNKNOWN", "faultproxy: upstream: "+err.Error())
		return
	}
	defer resp.Body.Close()

	switch f.kind {
	case kReset, kCut:
		p.hijackSend(w, q, resp, f)
	default:
		p.stream(w, r, q, resp, f)
	}
}

// forward sends r to the upstream and returns its response, redirects not
// followed (the client follows them, through the proxy, after rewriting).
func (p *Proxy) forward(r *http.Request) (*http.Response, error) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme = p.scheme
	out.URL.Host = p.Upstream
	out.Host = p.Upstream
	removeHopHeaders(out.Header)
	if r.ContentLength == 0 {
		out.Body = nil
	}
	return p.rt.RoundTrip(out)
}

// header returns the upstream response's headers, fit to send to the client.
func (p *Proxy) header(resp *http.Response) http.Header {
	h := resp.Header.Clone()
	removeHopHeaders(h)
	for _, name := range []string{"Location", "WWW-Authenticate", "Content-Location"} {
		vals := h.Values(name)
		if len(vals) == 0 {
			continue
		}
		h.Del(name)
		for _, v := range vals {
			h.Add(name, p.rewrite(v))
		}
	}
	return h
}

// rewrite points absolute URLs at the upstream (redirects, upload locations,
// token realms) at the proxy instead, so the client's follow-up requests go
// through it too.
func (p *Proxy) rewrite(v string) string {
	for _, scheme := range []string{"http://", "https://"} {
		v = strings.ReplaceAll(v, scheme+p.Upstream, "http://"+p.Host)
	}
	return v
}

// stream copies the body to the client chunk by chunk, flushing each, with
// the Slow, StallAfter, FlipAt or EditHeader fault applied.
func (p *Proxy) stream(w http.ResponseWriter, r *http.Request, q request, resp *http.Response, f Fault) {
	h := p.header(resp)
	if f.kind == kHeader {
		if v := f.edit(h.Get(f.header)); v != "" {
			h.Set(f.header, v)
		} else {
			h.Del(f.header)
		}
	}
	for k, vs := range h {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	q.status(resp.StatusCode)
	rc := http.NewResponseController(w)

	buf := make([]byte, 32<<10)
	chunk := int64(len(buf))
	if f.kind == kSlow {
		chunk = max(1, min(chunk, f.rate*int64(slowTick)/int64(time.Second)))
	}
	var off int64
	for {
		want := chunk
		if f.kind == kStall {
			want = min(want, f.after-off)
			if want <= 0 {
				_ = rc.Flush()
				p.wait(r.Context())
				q.note("stalled after %d bytes until the client left or the test ended", off)
				return
			}
		}
		n, rerr := resp.Body.Read(buf[:want])
		if n > 0 {
			if f.kind == kFlip && f.after >= off && f.after < off+int64(n) {
				buf[f.after-off] ^= 0xff
			}
			wn, werr := w.Write(buf[:n])
			off += int64(wn)
			q.sent(int64(wn))
			if werr == nil {
				werr = rc.Flush()
			}
			if werr != nil {
				q.note("client: %v", werr)
				return
			}
			if f.kind == kSlow {
				d := time.Duration(int64(n) * int64(time.Second) / f.rate)
				if !p.sleep(r.Context(), d) {
					q.note("client left or test ended while slow, after %d bytes", off)
					return
				}
			}
		}
		if rerr == io.EOF {
			return
		}
		if rerr != nil {
			// Returning short of Content-Length makes net/http close the
			// connection: the client sees the truncation.
			q.note("upstream body: %v", rerr)
			return
		}
	}
}

// hijackSend writes the response head and the first f.after body bytes
// straight on the TCP connection, then closes it: with RST (ResetAfter) or
// FIN (CutAfter). Hijacking is what lets the proxy announce the full
// Content-Length yet end early, which net/http's ResponseWriter refuses.
func (p *Proxy) hijackSend(w http.ResponseWriter, q request, resp *http.Response, f Fault) {
	h := p.header(resp)
	if resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		q.note("hijack: %v", err)
		return
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 %03d %s\r\n", resp.StatusCode, http.StatusText(resp.StatusCode))
	_ = h.Write(brw)
	_, _ = brw.WriteString("\r\n")
	q.status(resp.StatusCode)
	n, cerr := io.CopyN(brw, resp.Body, f.after)
	ferr := brw.Flush()
	q.sent(n)
	switch {
	case ferr != nil:
		q.note("client: %v", ferr)
		return
	case cerr != nil && cerr != io.EOF:
		q.note("upstream body: %v", cerr)
	}
	if f.kind == kReset {
		time.Sleep(resetPause)
		if lc, ok := conn.(interface{ SetLinger(int) error }); ok {
			if err := lc.SetLinger(0); err != nil {
				q.note("SO_LINGER: %v", err)
			}
		}
	}
}

// writeError answers with a registry-style error body (the API's
// {"errors":[...]}) so clients parse it as they would the real thing.
func (p *Proxy) writeError(w http.ResponseWriter, q request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	body := fmt.Sprintf(`{"errors":[{"code":%q,"message":%q}]}`+"\n", code, msg)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	q.status(status)
	n, _ := io.WriteString(w, body)
	q.sent(int64(n))
}

func errorCode(status int) string {
	switch status {
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusTooManyRequests:
		return "TOOMANYREQUESTS"
	case http.StatusUnauthorized:
		return "UNAUTHORIZED"
	}
	return "UNKNOWN"
}

// upstreamChallenge returns (and remembers) the WWW-Authenticate header the
// upstream answers an anonymous GET /v2/ with, rewritten, or "".
func (p *Proxy) upstreamChallenge(ctx context.Context) string {
	p.mu.Lock()
	c := p.challenge
	p.mu.Unlock()
	if c != nil {
		return *c
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.scheme+"://"+p.Upstream+"/v2/", nil)
	if err != nil {
		return ""
	}
	resp, err := p.rt.RoundTrip(req)
	if err != nil {
		return "" // not remembered: the next 401 tries again
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	v := ""
	if resp.StatusCode == http.StatusUnauthorized {
		v = p.rewrite(resp.Header.Get("WWW-Authenticate"))
	}
	p.mu.Lock()
	p.challenge = &v
	p.mu.Unlock()
	return v
}

// wait blocks until the client goes away or the test ends.
func (p *Proxy) wait(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-p.done:
	}
}

// sleep sleeps d, reporting false if the client left or the test ended first.
func (p *Proxy) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-p.done:
	}
	return false
}

// hopHeaders are per-connection headers (RFC 9110 section 7.6.1) a proxy must
// not forward.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func removeHopHeaders(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(d):
	}
}

// Blackhole listens on a free port of 127.0.0.1 and accepts connections but
// never reads from nor writes to them, until the test ends; it returns its
// host:port. Unlike an unused port (connection refused, retried at once) it
// makes a client wait: connect succeeds, the request is sent into the socket
// buffer, and no response ever comes, which is what exercises dial, TLS
// handshake and response-header timeouts.
func Blackhole(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faultproxy: blackhole: %v", err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				time.Sleep(10 * time.Millisecond)
				continue
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// Forward listens on addr (e.g. "127.0.0.2:0": any address of the loopback
// network on Linux) and relays each connection's bytes both ways to
// upstream, until the test ends; it returns its host:port. Nothing is
// parsed, so a TLS registry's own certificate reaches the client under a
// name it may not be valid for.
func Forward(t testing.TB, addr, upstream string) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("faultproxy: forward: %v", err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				time.Sleep(10 * time.Millisecond)
				continue
			}
			track(c)
			up, err := net.DialTimeout("tcp", upstream, 10*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			track(up)
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(up, c); closeWrite(up) }()
			go func() { defer wg.Done(); _, _ = io.Copy(c, up); closeWrite(c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		waitTimeout(&wg, drainTimeout)
	})
	return ln.Addr().String()
}

// closeWrite passes an end of stream on, so each side sees the other's.
func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}
