package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/internal/faultproxy"
	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// TestPushSaysWhyATargetIsUnreachable (issue 15, defect 10): a port where
// nothing listens, a certificate not valid for the name used and one from
// an unknown authority each say what happened, and none of them ends with
// the advice for a registry that speaks plain HTTP; a plain-HTTP registry
// still gets that advice.
func TestPushSaysWhyATargetIsUnreachable(t *testing.T) {
	testregistry.Isolate(t)
	crane := filepath.Join("testdata", "crane.tar")
	dir := t.TempDir()
	push := func(args ...string) string {
		t.Helper()
		out, stderr, code := runSplit(t, "", append([]string{"--retries", "1", "push", "--cache-dir", t.TempDir(), crane}, args...)...)
		if code != exitFailure {
			t.Fatalf("push %v: exit %d, want %d\n%s%s", args, code, exitFailure, out, stderr)
		}
		return stderr
	}
	plainHTTPAdvice := func(t *testing.T, stderr string) {
		t.Helper()
		if strings.Contains(stderr, "answers only over HTTP") || strings.Contains(stderr, "insecure = true") || strings.Contains(stderr, "plain HTTP") {
			t.Errorf("the plain-HTTP advice, for a registry that is not one:\n%s", stderr)
		}
	}

	t.Run("nothing listens", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		ln.Close()
		for _, extra := range [][]string{nil, {"--insecure"}} {
			stderr := push(append([]string{"--to", closed}, extra...)...)
			if !strings.Contains(stderr, closed+": connection refused") {
				t.Errorf("push --to %s %v: no \"connection refused\":\n%s", closed, extra, stderr)
			}
			plainHTTPAdvice(t, stderr)
		}
	})

	reg := testregistry.Start(t, testregistry.Options{TLS: true})
	t.Run("certificate for other names", func(t *testing.T) {
		// The registry's own certificate (127.0.0.1, ::1, localhost),
		// reached as 127.0.0.2.
		other := faultproxy.Forward(t, "127.0.0.2:0", reg.Host)
		spec := writeFile(t, dir, "other-name.toml", fmt.Sprintf("[registries.%q]\nca-file = %q\n\n[[group]]\nname = \"unused\"\nimages = [\"busybox\"]\n", other, reg.CAFile))
		stderr := push("--spec", spec, "--to", other)
		if !strings.Contains(stderr, "certificate not valid for 127.0.0.2 (valid for: localhost, 127.0.0.1, ::1)") {
			t.Errorf("no certificate name message:\n%s", stderr)
		}
		plainHTTPAdvice(t, stderr)
	})

	t.Run("unknown authority", func(t *testing.T) {
		stderr := push("--to", reg.Host)
		if !strings.Contains(stderr, "certificate signed by an unknown authority") || !strings.Contains(stderr, fmt.Sprintf("registries.%q", reg.Host)) || !strings.Contains(stderr, "ca-file") {
			t.Errorf("no unknown-authority message naming ca-file:\n%s", stderr)
		}
		plainHTTPAdvice(t, stderr)
	})

	t.Run("plain HTTP", func(t *testing.T) {
		plain := testregistry.Start(t, testregistry.Options{})
		stderr := push("--to", plain.Host)
		if !strings.Contains(stderr, plain.Host+": answers over plain HTTP") || !strings.Contains(stderr, "insecure = true") {
			t.Errorf("a plain-HTTP registry without the advice:\n%s", stderr)
		}
	})
}
