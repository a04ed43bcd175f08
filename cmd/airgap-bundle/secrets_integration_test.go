package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airgap-bundle/airgap-bundle/internal/testregistry"
)

// No password, nor its base64 form, reaches stdout, stderr, the lockfile,
// an archive, the cache or any file left on disk: credentials from the
// environment or a file, at every log level, right or wrong.
func TestSecretsNeverLeak(t *testing.T) {
	rnd := make([]byte, 8)
	rand.Read(rnd)
	pass := "pw-" + hex.EncodeToString(rnd)
	reg := testregistry.Start(t, testregistry.Options{TLS: true, Users: map[string]string{"ci": pass}})
	push(t, reg, "ci", pass)
	h := reg.Host
	start := time.Now()

	type source struct {
		name string
		auth func(dir, pw string) (spec string, env []string, secretFile string)
	}
	sources := []source{
		{"env", func(dir, pw string) (string, []string, string) {
			return `auth = { username = "ci", password-env = "REG_PW" }`, []string{"REG_PW=" + pw}, ""
		}},
		{"file", func(dir, pw string) (string, []string, string) {
			f := filepath.Join(dir, "auth.json")
			os.WriteFile(f, []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, h, base64.StdEncoding.EncodeToString([]byte("ci:"+pw)))), 0o600)
			return fmt.Sprintf("auth = { file = %q }", f), nil, f
		}},
	}
	for _, src := range sources {
		for _, level := range []string{"--quiet", "", "--verbose"} {
			for _, pw := range []string{pass, pass + "-wrong"} {
				name := fmt.Sprintf("%s %s right=%v", src.name, level, pw == pass)
				t.Run(name, func(t *testing.T) {
					root := t.TempDir()
					home, work, runtime, tmp := filepath.Join(root, "home"), filepath.Join(root, "work"), filepath.Join(root, "run"), filepath.Join(root, "tmp")
					for _, d := range []string{home, work, runtime, tmp} {
						os.MkdirAll(d, 0o700)
					}
					os.WriteFile(filepath.Join(work, "ca.pem"), []byte(mustRead(t, reg.CAFile)), 0o644)
					authLine, env, secretFile := src.auth(work, pw)
					spec := writeFile(t, work, "bundle.toml", fmt.Sprintf(`
[registries.%q]
ca-file = "ca.pem"
%s

[[group]]
name = "g"
archive = "g.tar"
images = ["%s/fixtures/single:v1", "%s/fixtures/multi-oci:v1"]
`, h, authLine, h, h))
					args := []string{"build", "--cache-dir", filepath.Join(root, "cache"), spec}
					if level != "" {
						args = append([]string{level}, args...)
					}
					cmd := exec.Command(cliBinary(t), args...)
					cmd.Env = cliEnv(append(env, "HOME="+home, "XDG_RUNTIME_DIR="+runtime, "XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
						"XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "DOCKER_CONFIG="+filepath.Join(home, ".docker"), "REGISTRY_AUTH_FILE=", "TMPDIR="+tmp)...)
					var stdout, stderr bytes.Buffer
					cmd.Stdout, cmd.Stderr = &stdout, &stderr
					err := cmd.Run()
					if (err == nil) != (pw == pass) {
						t.Fatalf("build: %v\n%s%s", err, stdout.String(), stderr.String())
					}
					secrets := []string{pw, base64.StdEncoding.EncodeToString([]byte("ci:" + pw))}
					for _, s := range secrets {
						if strings.Contains(stdout.String(), s) || strings.Contains(stderr.String(), s) {
							t.Errorf("output shows %q:\n%s%s", s, stdout.String(), stderr.String())
						}
					}
					// The run's own directories only (its TMPDIR is one of
					// them): never the machine's /tmp, which may hold other
					// jobs' files or a mounted procfs.
					for _, p := range secretScan(root, start, secretFile, secrets) {
						t.Errorf("%s holds the secret", p)
					}
				})
			}
		}
	}
}

// secretScan lists the files under root, changed since start, that hold
// one of secrets (skip excepted). It reads only regular files on root's
// own filesystem, never follows symlinks, and skips files over 64 MiB: a
// mounted procfs or a FIFO under root is passed by, not read.
func secretScan(root string, start time.Time, skip string, secrets []string) []string {
	var rootDev uint64
	if st, err := os.Stat(root); err == nil {
		rootDev = deviceOf(st)
	}
	var found []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == skip {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if deviceOf(info) != rootDev {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !info.Mode().IsRegular() || info.ModTime().Before(start) || info.Size() > 64<<20 {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				found = append(found, p)
				break
			}
		}
		return nil
	})
	return found
}

func deviceOf(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}

// The secret scan reads the run's own tree and nothing mounted in it or
// linked from it: it once walked all of /tmp and read a procfs pagemap
// until the kernel killed the test binary (22.9 GB).
func TestSecretScanStaysInItsTree(t *testing.T) {
	root := t.TempDir()
	start := time.Now().Add(-time.Second)
	secret := "pw-0123456789"
	leaked := writeFile(t, root, "leaked.txt", "x "+secret)
	outside := writeFile(t, t.TempDir(), "outside.txt", secret)
	if err := os.Symlink(outside, filepath.Join(root, "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	mounted := mountTmpfs(t, "1m")
	writeFile(t, mounted, "other-fs.txt", secret)
	nested := filepath.Join(root, "mnt")
	if err := os.Symlink(mounted, nested); err != nil {
		t.Fatal(err)
	}
	// A mount point inside the tree, not only a link to one.
	inner := filepath.Join(root, "inner")
	if err := os.Mkdir(inner, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "--bind", mounted, inner).CombinedOutput(); err != nil {
		t.Skipf("cannot bind-mount: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", inner).Run() })
	done := make(chan []string, 1)
	go func() { done <- secretScan(root, start, "", []string{secret}) }()
	select {
	case found := <-done:
		if len(found) != 1 || found[0] != leaked {
			t.Fatalf("scan found %v, want only %s", found, leaked)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("scan did not end (it opened the FIFO)")
	}
}
