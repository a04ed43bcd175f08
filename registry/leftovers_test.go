package registry

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const leftoverSpec = `
registries."reg.example.com" = { auth = { username = "ci", password-env = "AIRGAP_TEST_UNSET_PW" } }

[[group]]
name = "g"
images = ["reg.example.com/app:v1"]
`

// Issue 8, defect 7: a set-up error (here an unset password variable)
// leaves no directory behind.
func TestNewFailureLeavesNothing(t *testing.T) {
	rt := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", rt)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("AIRGAP_TEST_UNSET_PW", "")
	s := loadSpec(t, leftoverSpec)
	for range 3 {
		if env, err := New(s, Options{}); err == nil {
			env.Close()
			t.Fatal("New succeeded without the password")
		}
	}
	var left []string
	filepath.WalkDir(rt, func(p string, d os.DirEntry, err error) error {
		if p != rt && (d == nil || !d.IsDir() || p != filepath.Join(rt, "airgap-bundle")) {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("failed set-ups left %v", left)
	}
}

// Issue 8, defect 7: credentials never go to the shared temporary
// directory, even without XDG_RUNTIME_DIR; and a killed run's directory
// (credentials included) is removed by the next run.
func TestCredentialsDirIsPrivate(t *testing.T) {
	root := t.TempDir()
	tmp, home := filepath.Join(root, "tmp"), filepath.Join(root, "home")
	for _, d := range []string{tmp, home} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("TMPDIR", tmp)
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("AIRGAP_TEST_UNSET_PW", "pw")
	s := loadSpec(t, leftoverSpec)

	// A run killed with -9: its directory and credentials stay behind.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	base, err := PrivateDir()
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(base, "run-"+strconv.Itoa(cmd.Process.Pid)+"-123")
	live := filepath.Join(base, "run-"+strconv.Itoa(os.Getppid())+"-456")
	for _, d := range []string{stale, live} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "auth.json"), []byte(`{"auths":{}}`), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	env, err := New(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	dir := filepath.Dir(env.Sys.AuthFilePath)
	if _, err := os.Stat(env.Sys.AuthFilePath); err != nil {
		t.Fatalf("no auth file: %v", err)
	}
	if strings.HasPrefix(dir, os.TempDir()+string(filepath.Separator)) {
		t.Errorf("credentials in %s, under the shared temporary directory %s", dir, os.TempDir())
	}
	if !strings.HasPrefix(dir, home+string(filepath.Separator)) {
		t.Errorf("credentials in %s, not under the user's own directory %s", dir, home)
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v, want mode 0700", d, st.Mode().Perm(), err)
		}
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the killed run's directory %s is still there (%v)", stale, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live run's directory was removed: %v", err)
	}
}
