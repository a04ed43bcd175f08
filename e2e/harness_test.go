package e2e

// Harness: runs the REAL consumers of an air-gap archive (dockerd 20.10,
// containerd 1.6 + ctr, containerd 2.x + ctr, a k3s-style import through the
// containerd 2.x Go client, podman, skopeo) against daemons that daemons.sh
// runs on private sockets under $E2E_DIR.
//
// Everything here is skipped unless AIRGAP_E2E=1. TestMain starts the daemons
// with daemons.sh (and stops them again afterwards, unless they were already
// running or E2E_KEEP_DAEMONS=1) and builds cmd/k3simport.
//
// The helpers are for sequential use per daemon: ctrImport cleans the k8s.io
// namespace of the daemon it talks to (under a per-daemon lock) so that the map
// it returns is exactly what the archive produced.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Containerd selects one of the two containerd daemons.
type Containerd int

const (
	Containerd16 Containerd = iota // Debian containerd 1.6 + its ctr
	Containerd2                    // containerd 2.x built by daemons.sh + its ctr
)

func (c Containerd) String() string {
	if c == Containerd16 {
		return "containerd16"
	}
	return "containerd2"
}

// Sock is the daemon's gRPC socket.
func (c Containerd) Sock() string { return filepath.Join(e2eDir, c.String(), "containerd.sock") }

// Ctr is the ctr binary that ships with that containerd version.
func (c Containerd) Ctr() string {
	if c == Containerd16 {
		return envOr("CTR16_BIN", "/usr/bin/ctr")
	}
	return filepath.Join(e2eDir, "bin", "ctr")
}

var (
	e2eEnabled   = os.Getenv("AIRGAP_E2E") == "1"
	e2eDir       = envOr("E2E_DIR", "/tmp/airgap-e2e")
	k3sImportBin string
	ctrLocks     = map[Containerd]*sync.Mutex{Containerd16: {}, Containerd2: {}}
	cmdTimeout   = 5 * time.Minute
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// requireE2E skips the test unless AIRGAP_E2E=1.
func requireE2E(t testing.TB) {
	t.Helper()
	if !e2eEnabled {
		t.Skip("set AIRGAP_E2E=1 to run the end-to-end consumer tests (root, Debian docker.io/containerd/podman/skopeo)")
	}
}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if !e2eEnabled {
		return m.Run()
	}
	t0 := time.Now()
	script, err := filepath.Abs("daemons.sh")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	daemons := func(sub string) error {
		cmd := exec.Command("bash", script, sub)
		cmd.Env = append(os.Environ(), "E2E_DIR="+e2eDir)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return cmd.Run()
	}
	startedHere := false
	if daemons("status") != nil {
		if err := daemons("start"); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: daemons.sh start failed: %v (logs in %s)\n", err, e2eDir)
			_ = daemons("stop")
			return 1
		}
		startedHere = true
	}
	if startedHere && os.Getenv("E2E_KEEP_DAEMONS") != "1" {
		defer func() {
			if err := daemons("stop"); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: daemons.sh stop: %v\n", err)
			}
		}()
	}

	k3sImportBin = filepath.Join(e2eDir, "bin", "k3simport")
	build := exec.Command("go", "build", "-o", k3sImportBin, "./cmd/k3simport")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building k3simport: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: harness ready in %s (daemons started here: %v)\n", time.Since(t0).Round(time.Millisecond), startedHere)
	code := m.Run()
	if code != 0 {
		dumpDaemonLogs()
	}
	if toolBin != "" {
		os.RemoveAll(filepath.Dir(toolBin)) // tool's build, one per run
	}
	return code
}

// dumpDaemonLogs prints the tail of each daemon log, to make failures diagnosable in CI.
func dumpDaemonLogs() {
	for _, name := range []string{"containerd16.log", "containerd2.log", "dockerd.log"} {
		b, err := os.ReadFile(filepath.Join(e2eDir, name))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 25 {
			lines = lines[len(lines)-25:]
		}
		fmt.Fprintf(os.Stderr, "e2e: ---- last lines of %s ----\n%s\n", name, strings.Join(lines, "\n"))
	}
}

// run executes a command with a timeout and returns stdout, stderr.
func run(env []string, name string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String(), err
}

func mustRun(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	out, _, err := run(env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ---------------------------------------------------------------- docker

func dockerEnv() []string {
	return []string{
		"DOCKER_HOST=unix://" + filepath.Join(e2eDir, "docker", "docker.sock"),
		"DOCKER_CONFIG=" + filepath.Join(e2eDir, "docker", "client"),
	}
}

// docker runs the docker CLI (Debian's 20.10 by default, DOCKER_BIN overrides)
// against the harness dockerd and returns stdout.
func docker(t testing.TB, args ...string) string {
	t.Helper()
	return mustRun(t, dockerEnv(), envOr("DOCKER_BIN", "/usr/bin/docker"), args...)
}

// dockerLoad runs `docker load -i archive` and returns what it reports as
// loaded: "name:tag" for each "Loaded image: ..." line and "sha256:..." for
// each "Loaded image ID: ..." line.
func dockerLoad(t testing.TB, archive string) []string {
	t.Helper()
	out := docker(t, "load", "-i", archive)
	var loaded []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "Loaded image ID: "); ok {
			loaded = append(loaded, v)
		} else if v, ok := strings.CutPrefix(line, "Loaded image: "); ok {
			loaded = append(loaded, v)
		}
	}
	if len(loaded) == 0 {
		t.Fatalf("docker load -i %s loaded nothing; output:\n%s", archive, out)
	}
	return loaded
}

// DockerImage is the part of `docker image inspect` the tests look at.
type DockerImage struct {
	ID           string   `json:"Id"`
	RepoTags     []string `json:"RepoTags"`
	RepoDigests  []string `json:"RepoDigests"`
	Architecture string   `json:"Architecture"`
	Variant      string   `json:"Variant"`
	Os           string   `json:"Os"`
	Config       struct {
		Cmd        []string          `json:"Cmd"`
		Entrypoint []string          `json:"Entrypoint"`
		Env        []string          `json:"Env"`
		Labels     map[string]string `json:"Labels"`
	} `json:"Config"`
	RootFS struct {
		Type   string   `json:"Type"`
		Layers []string `json:"Layers"`
	} `json:"RootFS"`
}

// dockerInspect runs `docker image inspect ref`.
func dockerInspect(t testing.TB, ref string) DockerImage {
	t.Helper()
	var imgs []DockerImage
	if err := json.Unmarshal([]byte(docker(t, "image", "inspect", ref)), &imgs); err != nil || len(imgs) != 1 {
		t.Fatalf("docker image inspect %s: %v (%d results)", ref, err, len(imgs))
	}
	return imgs[0]
}

// dockerRmi removes images from the harness dockerd, ignoring missing ones.
func dockerRmi(t testing.TB, refs ...string) {
	t.Helper()
	for _, ref := range refs {
		_, _, _ = run(dockerEnv(), envOr("DOCKER_BIN", "/usr/bin/docker"), "image", "rm", "-f", ref)
	}
}

// ---------------------------------------------------------------- ctr

// ctr runs `ctr --address SOCK -n k8s.io args...` with the ctr of that version.
func ctr(t testing.TB, which Containerd, args ...string) string {
	t.Helper()
	return mustRun(t, nil, which.Ctr(), append([]string{"--address", which.Sock(), "-n", "k8s.io"}, args...)...)
}

// ctrImages returns `ctr -n k8s.io images ls` as name -> target digest.
func ctrImages(t testing.TB, which Containerd) map[string]string {
	t.Helper()
	out := ctr(t, which, "images", "ls")
	imgs := map[string]string{}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 3 { // header: REF TYPE DIGEST SIZE PLATFORMS LABELS
			continue
		}
		imgs[f[0]] = f[2]
	}
	return imgs
}

// ctrClean deletes every image in the k8s.io namespace of that containerd.
func ctrClean(t testing.TB, which Containerd) {
	t.Helper()
	names := strings.Fields(ctr(t, which, "images", "ls", "-q"))
	if len(names) > 0 {
		ctr(t, which, append([]string{"images", "rm", "--sync"}, names...)...)
	}
}

// ctrImport empties the k8s.io namespace, runs
// `ctr -n k8s.io images import [--all-platforms] archive` (default unpack into
// overlayfs, as a user would) and returns `ctr images ls` as name -> digest.
func ctrImport(t testing.TB, which Containerd, archive string, allPlatforms bool) map[string]string {
	t.Helper()
	imgs, out, err := ctrImportErr(t, which, archive, allPlatforms)
	if err != nil {
		t.Fatalf("%s: ctr images import %s: %v", which, archive, err)
	}
	if len(imgs) == 0 {
		t.Fatalf("%s: ctr images import %s created no image; output:\n%s", which, archive, out)
	}
	return imgs
}

// ctrImportErr is ctrImport for tests that expect a failure: it returns the
// images, the combined ctr output and the import error instead of failing.
func ctrImportErr(t testing.TB, which Containerd, archive string, allPlatforms bool) (map[string]string, string, error) {
	t.Helper()
	mu := ctrLocks[which]
	mu.Lock()
	defer mu.Unlock()
	ctrClean(t, which)
	args := []string{"--address", which.Sock(), "-n", "k8s.io", "images", "import"}
	if allPlatforms {
		args = append(args, "--all-platforms")
	}
	args = append(args, archive)
	stdout, stderr, err := run(nil, which.Ctr(), args...)
	return ctrImages(t, which), stdout + stderr, err
}

// ---------------------------------------------------------------- k3s

// K3sOpts are the extra k3simport actions.
type K3sOpts struct {
	Clean        bool     // delete all k8s.io images first
	Unpack       string   // image name to unpack into overlayfs after import
	Platform     string   // platform to unpack (default host)
	CheckPresent []string // paths that must exist in the unpacked rootfs
	CheckAbsent  []string // paths that must not exist (whiteout-deleted files)
}

// k3sImport imports archive the way k3s's agent does (containerd 2.x client,
// k8s.io, decompression by extension, WithAllPlatforms(true)+WithSkipMissing)
// into the given containerd and returns name -> target digest of the
// imported images. It fails the test on any error, including a failed
// --check-present/--check-absent.
func k3sImport(t testing.TB, which Containerd, archive string, opts K3sOpts) map[string]string {
	t.Helper()
	imgs, stderr, err := k3sImportErr(t, which, archive, opts)
	if err != nil {
		t.Fatalf("k3simport %s into %s: %v", archive, which, err)
	}
	if archive != "" && len(imgs) == 0 {
		t.Fatalf("k3simport %s into %s imported no image; stderr:\n%s", archive, which, stderr)
	}
	return imgs
}

// k3sImportErr is k3sImport returning the error (an *exec.ExitError; exit
// code 3 = a path check failed, 4 = k3s's post-import tagging failed) and
// k3simport's stderr instead of failing the test.
func k3sImportErr(t testing.TB, which Containerd, archive string, opts K3sOpts) (map[string]string, string, error) {
	t.Helper()
	if k3sImportBin == "" {
		t.Fatal("k3simport not built (TestMain did not run the harness setup)")
	}
	args := []string{"--address", which.Sock()}
	if opts.Clean {
		args = append(args, "--clean")
	}
	if archive != "" {
		args = append(args, "--archive", archive)
	}
	if opts.Unpack != "" {
		args = append(args, "--unpack", opts.Unpack)
	}
	if opts.Platform != "" {
		args = append(args, "--platform", opts.Platform)
	}
	for _, p := range opts.CheckPresent {
		args = append(args, "--check-present", p)
	}
	for _, p := range opts.CheckAbsent {
		args = append(args, "--check-absent", p)
	}
	stdout, stderr, err := run(nil, k3sImportBin, args...)
	imgs := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if name, dgst, ok := strings.Cut(line, "\t"); ok {
			imgs[name] = dgst
		}
	}
	return imgs, stderr, err
}

// exitCode returns the exit status of a failed command error, or -1.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// ---------------------------------------------------------------- podman

// stateBase is where daemons.sh keeps daemon state: $E2E_DIR, or the tmpfs
// it mounted when overlayfs did not work on $E2E_DIR's filesystem.
func stateBase() string {
	if b, err := os.ReadFile(filepath.Join(e2eDir, "state-base")); err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b))
	}
	return e2eDir
}

// podmanArgs point podman at its own storage under the harness state dir so
// the host's /var/lib/containers/storage is never touched (containers/image
// still keeps its blob-info cache in /var/lib/containers/cache for root).
func podmanArgs() []string {
	base := filepath.Join(stateBase(), "podman")
	return []string{
		"--root", filepath.Join(base, "root"),
		"--runroot", filepath.Join(base, "runroot"),
		"--tmpdir", filepath.Join(base, "tmp"),
		"--storage-driver", envOr("E2E_PODMAN_STORAGE_DRIVER", "overlay"),
		"--events-backend", "none",
		"--cgroup-manager", "cgroupfs",
	}
}

// podman runs podman with the harness storage and returns stdout.
func podman(t testing.TB, args ...string) string {
	t.Helper()
	return mustRun(t, nil, "podman", append(podmanArgs(), args...)...)
}

// podmanLoad runs `podman load -i archive` and returns the loaded names
// (or image IDs for unnamed images).
func podmanLoad(t testing.TB, archive string) []string {
	t.Helper()
	out := podman(t, "load", "-i", archive)
	var loaded []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		v, ok := strings.CutPrefix(line, "Loaded image(s): ")
		if !ok {
			v, ok = strings.CutPrefix(line, "Loaded image: ")
		}
		if !ok {
			continue
		}
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				loaded = append(loaded, n)
			}
		}
	}
	if len(loaded) == 0 {
		t.Fatalf("podman load -i %s loaded nothing; output:\n%s", archive, out)
	}
	return loaded
}

// ---------------------------------------------------------------- skopeo

// SkopeoInfo is the part of `skopeo inspect` output the tests look at.
type SkopeoInfo struct {
	Name         string            `json:"Name"`
	Digest       string            `json:"Digest"`
	RepoTags     []string          `json:"RepoTags"`
	Architecture string            `json:"Architecture"`
	Variant      string            `json:"Variant"`
	Os           string            `json:"Os"`
	Layers       []string          `json:"Layers"`
	Labels       map[string]string `json:"Labels"`
	Env          []string          `json:"Env"`
}

// skopeoInspect runs `skopeo inspect REF` where REF is a full transport
// reference, e.g. "docker-archive:/x.tar", "docker-archive:/x.tar:name:tag",
// "oci-archive:/x.tar:name". Extra flags (e.g. "--override-arch", "arm64")
// go before REF.
func skopeoInspect(t testing.TB, ref string, flags ...string) SkopeoInfo {
	t.Helper()
	out := mustRun(t, nil, "skopeo", append(append([]string{"inspect"}, flags...), ref)...)
	var info SkopeoInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("skopeo inspect %s: %v\n%s", ref, err, out)
	}
	return info
}

// skopeoInspectRaw returns `skopeo inspect --raw REF` (the manifest or index
// bytes as stored) and, with config=true, `--config --raw` (the config blob).
func skopeoInspectRaw(t testing.TB, ref string, config bool) []byte {
	t.Helper()
	args := []string{"inspect", "--raw"}
	if config {
		args = append(args, "--config")
	}
	return []byte(mustRun(t, nil, "skopeo", append(args, ref)...))
}
