package faultproxy

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Rule schedules one fault. A request matches a rule when Method (empty: any)
// equals the request method and Path (a regular expression, empty: any)
// matches the request's URL path. Each rule counts the requests that match
// it, whether or not it fires, and fires on the occurrences When selects, so
// "the 2nd GET of a blob" means the same thing however many other rules
// exist. When several rules fire on one request, the first one added wins.
type Rule struct {
	// Name labels the fault in the request log; defaults to the fault's kind.
	Name string
	// Method is e.g. "GET"; empty matches every method.
	Method string
	// Path is a regular expression matched (unanchored) against the URL
	// path, e.g. "/blobs/sha256:", "/manifests/", `^/v2/fixtures/single/`.
	Path string
	// When selects which matching requests get the fault; the zero value is
	// Always.
	When Schedule
	// Fault is what happens to those requests.
	Fault Fault
}

// Schedule selects occurrences 1-based: the requests numbered From..To
// (inclusive, To 0 meaning no end) among those matching a rule.
type Schedule struct{ From, To int }

// Nth selects only the nth matching request (1-based).
func Nth(n int) Schedule { return Schedule{From: n, To: n} }

// First selects the first n matching requests.
func First(n int) Schedule { return Schedule{From: 1, To: n} }

// Always selects every matching request.
func Always() Schedule { return Schedule{From: 1} }

func (s Schedule) selects(n int) bool {
	from := s.From
	if from < 1 {
		from = 1
	}
	return n >= from && (s.To == 0 || n <= s.To)
}

type kind int

const (
	kStatus kind = iota + 1
	kUnauthorized
	kHang
	kReset
	kCut
	kSlow
	kStall
	kFlip
	kHeader
)

var kindNames = map[kind]string{
	kStatus:       "status",
	kUnauthorized: "unauthorized",
	kHang:         "hang",
	kReset:        "reset",
	kCut:          "cut",
	kSlow:         "slow",
	kStall:        "stall",
	kFlip:         "flip",
	kHeader:       "header",
}

// Fault is one misbehaviour; build it with the constructors below. Byte
// offsets (K) count bytes of the response body this proxy sends, not of the
// blob: for a Range request, offset 0 is the first byte of the range. A body
// of at most K bytes is sent whole before ResetAfter, CutAfter or StallAfter
// act (the reset still follows; the cut and the stall then change nothing).
type Fault struct {
	kind       kind
	status     int
	retryAfter time.Duration
	after      int64 // K
	rate       int64 // bytes per second
	header     string
	edit       func(string) string
}

// Status answers code (e.g. 500, 502, 503, 408, 429) with a registry-style
// JSON error body, without contacting upstream: the client's retry logic is
// tested, not the registry's.
func Status(code int) Fault { return Fault{kind: kStatus, status: code} }

// StatusRetryAfter is Status with a "Retry-After: N" header, N being
// retryAfter in whole seconds (rounded up; the header has no finer unit).
func StatusRetryAfter(code int, retryAfter time.Duration) Fault {
	return Fault{kind: kStatus, status: code, retryAfter: retryAfter}
}

// Unauthorized answers 401 without contacting upstream for the request,
// carrying the WWW-Authenticate challenge the upstream gives an anonymous
// "GET /v2/" (rewritten to point at the proxy), or none when the upstream
// does not ask for authentication. It stands for a token or session that
// expires in the middle of a run.
func Unauthorized() Fault { return Fault{kind: kUnauthorized} }

// Hang reads the request and never answers, until the client gives up or the
// test ends: a registry that accepted the connection but is stuck (response
// header timeouts). See Blackhole for one that never even reads.
func Hang() Fault { return Fault{kind: kHang} }

// ResetAfter forwards the request, sends the upstream's status and headers
// and the first k body bytes, then closes the TCP connection with SO_LINGER
// 0 so the kernel sends RST: the client's read fails with ECONNRESET. The
// kernel may drop bytes the client had not read yet, so it sees at most k.
func ResetAfter(k int64) Fault { return Fault{kind: kReset, after: k} }

// CutAfter forwards the request, sends the status and headers (with the full
// Content-Length) and the first k body bytes, then closes the connection
// cleanly (FIN): the client reads exactly k bytes, then io.ErrUnexpectedEOF.
func CutAfter(k int64) Fault { return Fault{kind: kCut, after: k} }

// Slow streams the whole body at about bytesPerSecond, in chunks of a tenth
// of a second, so client read timeouts and progress can be observed.
func Slow(bytesPerSecond int64) Fault { return Fault{kind: kSlow, rate: bytesPerSecond} }

// StallAfter sends the status, headers and the first k body bytes, then
// sends nothing more and holds the connection until the client gives up or
// the test ends: idle-read timeouts, as opposed to total deadlines.
func StallAfter(k int64) Fault { return Fault{kind: kStall, after: k} }

// FlipAt forwards the response unchanged except that the body byte at offset
// k is inverted (XOR 0xff), so length and status are right and only a digest
// check can notice. A body shorter than k+1 bytes is left intact.
func FlipAt(k int64) Fault { return Fault{kind: kFlip, after: k} }

// EditHeader forwards the request and the response unchanged except for
// the response header name, which becomes edit(its value) (the value after
// the proxy's own rewriting of Location; "" when absent; an empty result
// removes it). It stands for a registry that answers what it should not: a
// Docker-Content-Digest other than the content's, an upload Location on
// another host.
func EditHeader(name string, edit func(string) string) Fault {
	return Fault{kind: kHeader, header: http.CanonicalHeaderKey(name), edit: edit}
}

// String describes the fault for logs, e.g. "status 503 retry-after 2s".
func (f Fault) String() string {
	name := kindNames[f.kind]
	switch f.kind {
	case kStatus:
		s := fmt.Sprintf("%s %d", name, f.status)
		if f.retryAfter > 0 {
			s += fmt.Sprintf(" retry-after %s", f.retryAfter)
		}
		return s
	case kReset, kCut, kStall:
		return fmt.Sprintf("%s after %d", name, f.after)
	case kFlip:
		return fmt.Sprintf("%s at %d", name, f.after)
	case kSlow:
		return fmt.Sprintf("%s %d B/s", name, f.rate)
	case kHeader:
		return name + " " + f.header
	case 0:
		return "none"
	}
	return name
}

// contactsUpstream reports whether the fault needs the upstream's response.
func (f Fault) contactsUpstream() bool {
	switch f.kind {
	case kStatus, kUnauthorized, kHang:
		return false
	}
	return true
}

// retryAfterSeconds renders the Retry-After value (delay-seconds).
func (f Fault) retryAfterSeconds() string {
	secs := int64((f.retryAfter + time.Second - 1) / time.Second)
	return fmt.Sprint(secs)
}

// Handle reports on a rule added with Proxy.Add.
type Handle struct {
	p       *Proxy
	rule    Rule
	re      *regexp.Regexp
	matched int // guarded by p.mu
	fired   int // guarded by p.mu
}

// Matched is how many requests matched the rule's method and path so far.
func (h *Handle) Matched() int {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	return h.matched
}

// Fired is how many requests the fault was applied to so far.
func (h *Handle) Fired() int {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	return h.fired
}

func (h *Handle) matches(method, path string) bool {
	if h.rule.Method != "" && !strings.EqualFold(h.rule.Method, method) {
		return false
	}
	return h.re == nil || h.re.MatchString(path)
}

func (h *Handle) name() string {
	if h.rule.Name != "" {
		return h.rule.Name
	}
	return h.rule.Fault.String()
}
