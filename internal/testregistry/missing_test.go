package testregistry

import (
	"errors"
	"testing"
)

// recorder is a testing.TB that records Skipf/Fatalf instead of stopping.
type recorder struct {
	testing.TB
	skipped, fatal bool
	msg            string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = true
	r.msg = format
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = true
	r.msg = format
}

func TestMissingBinarySkipsOrFails(t *testing.T) {
	for _, tc := range []struct {
		env         string
		skip, fatal bool
	}{
		{env: "", skip: true},
		{env: "0", skip: true},
		{env: "1", fatal: true},
	} {
		t.Run("env="+tc.env, func(t *testing.T) {
			t.Setenv(RequireEnv, tc.env)
			r := &recorder{TB: t}
			missing(r, errors.New("docker-registry not found"))
			if r.skipped != tc.skip || r.fatal != tc.fatal {
				t.Errorf("%s=%q: skipped=%v fatal=%v, want skipped=%v fatal=%v", RequireEnv, tc.env, r.skipped, r.fatal, tc.skip, tc.fatal)
			}
		})
	}
}
