package image

import (
	"strings"
	"testing"
)

func TestDefaultRegistry(t *testing.T) {
	cases := []struct{ def, in, want string }{
		{"docker.io", "busybox", "docker.io/library/busybox:latest"},
		{"docker.io", "calico/node:v3.28.0", "docker.io/calico/node:v3.28.0"},
		{"registry.example.com:5000", "calico/node:v3.28.0", "registry.example.com:5000/calico/node:v3.28.0"},
		{"registry.example.com", "busybox", "registry.example.com/busybox:latest"},
		{"registry.example.com", "quay.io/x/y:1", "quay.io/x/y:1"},
		{"registry.example.com", "localhost/x:1", "localhost/x:1"},
	}
	for _, c := range cases {
		r, err := ParseReference(c.in, c.def)
		if err != nil || r.String() != c.want {
			t.Errorf("ParseReference(%q, %q) = %v, %v; want %s", c.in, c.def, r.Named, err, c.want)
		}
	}
}

// The per-host layout that push --to-per-host writes and serve answers:
// a name without a port keeps its full name, a port's ":" becomes "_".
func TestPerHostPath(t *testing.T) {
	for in, want := range map[string]string{
		"busybox:1.36":                                             "docker.io/library/busybox",
		"docker.io/rancher/pause:3.6":                              "docker.io/rancher/pause",
		"127.0.0.1:5000/bench/multiarch:1.0":                       "127.0.0.1_5000/bench/multiarch",
		"harbor.corp:8443/team/app:1":                              "harbor.corp_8443/team/app",
		"localhost:5000/x/y:1":                                     "localhost_5000/x/y",
		"Registry.Example.com/x@sha256:" + strings.Repeat("a", 64): "registry.example.com/x",
	} {
		r, err := ParseReference(in, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := r.PerHostPath(); got != want {
			t.Errorf("PerHostPath(%s) = %q, want %q", in, got, want)
		}
	}
}
