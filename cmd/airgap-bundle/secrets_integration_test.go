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
					home, work, runtime := filepath.Join(root, "home"), filepath.Join(root, "work"), filepath.Join(root, "run")
					for _, d := range []string{home, work, runtime} {
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
						"XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "DOCKER_CONFIG="+filepath.Join(home, ".docker"), "REGISTRY_AUTH_FILE=")...)
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
					scan := func(dir string) {
						filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
							if err != nil || d.IsDir() || p == secretFile {
								return nil
							}
							info, err := d.Info()
							if err != nil || info.ModTime().Before(start) || !info.Mode().IsRegular() || info.Size() > 64<<20 {
								return nil
							}
							b, err := os.ReadFile(p)
							if err != nil {
								return nil
							}
							for _, s := range secrets {
								if bytes.Contains(b, []byte(s)) {
									t.Errorf("%s holds the secret", p)
								}
							}
							return nil
						})
					}
					scan(root) // lockfile, archives, SHA256SUMS, cache, home, runtime dir
					scan(os.TempDir())
				})
			}
		}
	}
}
