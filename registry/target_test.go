package registry

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// go-containerregistry's errors (push) are classified by their status.
func TestTransientGGCRError(t *testing.T) {
	for code, want := range map[int]bool{503: true, 429: true, 408: true, 500: true, 404: false, 401: false, 400: false} {
		err := fmt.Errorf("PUT x: %w", &transport.Error{StatusCode: code})
		if got := Transient(err); got != want {
			t.Errorf("status %d: Transient = %v, want %v", code, got, want)
		}
	}
}

// boundedTransport refuses plain HTTP unless the host is insecure, and
// cuts a request whose response does not come within ResponseTimeout.
func TestBoundedTransport(t *testing.T) {
	slow := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-slow
		}
		w.WriteHeader(200)
	}))
	defer srv.Close()
	defer close(slow)
	p := Policy{ResponseTimeout: 200 * time.Millisecond, StallTimeout: time.Second}
	strict := &boundedTransport{base: http.DefaultTransport, policy: p, host: "h"}
	if _, err := (&http.Client{Transport: strict}).Get(srv.URL + "/"); !errors.Is(err, ErrPlainHTTP) {
		t.Errorf("plain HTTP to a host that is not insecure: %v", err)
	}
	loose := &boundedTransport{base: http.DefaultTransport, policy: p, host: "h", allowHTTP: true}
	resp, err := (&http.Client{Transport: loose}).Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := (&http.Client{Transport: loose}).Get(srv.URL + "/slow"); !errors.Is(err, ErrResponseTimeout) || !Transient(err) {
		t.Errorf("slow response: %v", err)
	}
}
