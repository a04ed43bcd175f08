package lockfile

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
)

// A lockfile Parse accepts encodes to bytes that parse back to the same
// encoding; a refused one is a lockfile error with a line in the file.
func FuzzParse(f *testing.F) {
	good, err := sample().Encode("bundle.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(strings.Replace(string(good), "version = 1", "version = 1\nextra = true", 1)))
	f.Add([]byte(strings.Replace(string(good), "[[group]]\nname = \"a\"", "[[group]\nname = \"a\"", 1)))
	f.Add([]byte(strings.Replace(string(good), "size = 30", "size = 30.0", 1)))
	f.Add([]byte("version = 1\n"))
	signed, err := withArtifacts().Encode("bundle.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed)
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Parse(data, "bundle.lock")
		if err != nil {
			if !errors.Is(err, errdefs.ErrLockfile) {
				t.Fatalf("error is not ErrLockfile: %v", err)
			}
			var pe *errdefs.Error
			if errors.As(err, &pe) && pe.Pos.Line > strings.Count(string(data), "\n")+1 {
				t.Fatalf("error past the end of the file: %v", err)
			}
			return
		}
		out, err := l.Encode("bundle.toml")
		if err != nil {
			t.Fatalf("encoding an accepted lockfile: %v", err)
		}
		l2, err := Parse(out, "bundle.lock")
		if err != nil {
			t.Fatalf("re-parsing the encoding: %v\n%s", err, out)
		}
		out2, err := l2.Encode("bundle.toml")
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("encoding is not stable (%v):\n%s\n---\n%s", err, out, out2)
		}
	})
}
