package image

import "testing"

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
