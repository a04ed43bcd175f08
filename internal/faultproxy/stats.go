package faultproxy

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Path kinds, from the registry API path.
const (
	KindManifests = "manifests" // /v2/NAME/manifests/REF
	KindBlobs     = "blobs"     // /v2/NAME/blobs/DIGEST (fetches, not uploads)
	KindUploads   = "uploads"   // /v2/NAME/blobs/uploads/... (pushes)
	KindOther     = "other"     // /v2/, tags, catalog, token endpoints...
)

// PathKind classifies a URL path by its last "/manifests/" or "/blobs/"
// segment (repository names may contain either word; references and digests
// cannot contain "/"). Uploads are kept apart from blobs so that "how many
// times was this blob fetched" is not muddied by pushes made through the
// proxy.
func PathKind(path string) string {
	m, b := strings.LastIndex(path, "/manifests/"), strings.LastIndex(path, "/blobs/")
	switch {
	case m < 0 && b < 0:
		return KindOther
	case m > b:
		return KindManifests
	case strings.HasPrefix(path[b+len("/blobs/"):], "uploads/"):
		return KindUploads
	}
	return KindBlobs
}

// Key is a (method, path kind) pair, e.g. {"GET", "blobs"}.
type Key struct{ Method, Kind string }

// Entry is one request in the proxy's log.
type Entry struct {
	Seq    int    // 1-based arrival order
	Method string // request method
	Path   string // URL path
	Range  string // Range header, "" when absent
	// Status is the status sent to the client (0 when none was sent: Hang).
	Status int
	// Fault names the fault applied, "" for a plain forward.
	Fault string
	// Bytes is how many body bytes were sent to the client.
	Bytes int64
	// Err is what went wrong forwarding, or how the fault ended, "" if
	// nothing did.
	Err string
	// Start is when the request arrived, End when the proxy was done with
	// it (zero while it is still being served): for tests of overlap.
	Start, End time.Time
}

func (e Entry) String() string {
	s := fmt.Sprintf("#%d %s %s", e.Seq, e.Method, e.Path)
	if e.Range != "" {
		s += " range=" + e.Range
	}
	s += fmt.Sprintf(" -> %d, %d bytes", e.Status, e.Bytes)
	if e.Fault != "" {
		s += " [fault: " + e.Fault + "]"
	}
	if e.Err != "" {
		s += " (" + e.Err + ")"
	}
	return s
}

// Stats is a snapshot of the proxy's counters.
type Stats struct {
	// Requests counts requests by method and path kind.
	Requests map[Key]int
	// Upstream counts requests forwarded to the upstream (faults like Status
	// answer without it).
	Upstream int
	// RangeRequests counts requests carrying a Range header; Ranges lists
	// their values in arrival order.
	RangeRequests int
	Ranges        []string
	// BytesSent is the number of response body bytes sent, by URL path.
	BytesSent map[string]int64
	// Faults counts requests a fault was applied to.
	Faults int
}

// Count is Requests[Key{method, kind}].
func (s Stats) Count(method, kind string) int { return s.Requests[Key{method, kind}] }

// Total is the number of requests.
func (s Stats) Total() int {
	n := 0
	for _, c := range s.Requests {
		n += c
	}
	return n
}

func (s Stats) String() string {
	keys := make([]Key, 0, len(s.Requests))
	for k := range s.Requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Kind != keys[j].Kind {
			return keys[i].Kind < keys[j].Kind
		}
		return keys[i].Method < keys[j].Method
	})
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s %s=%d", k.Method, k.Kind, s.Requests[k])
	}
	fmt.Fprintf(&b, "; upstream=%d ranges=%d faults=%d", s.Upstream, s.RangeRequests, s.Faults)
	return b.String()
}
