package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// checkNodeWorld is a delta.json whose core.delta.tar leaves out two
// layers, a socket standing for containerd's and a fake ctr that prints
// the blobs in list (and records its arguments): check-node's side of the
// conversation with the node. e2e/delta_test.go has the real containerd.
type checkNodeWorld struct {
	dir, sock, ctr, list, args string
	a, b                       digest.Digest
}

func newCheckNodeWorld(t *testing.T) *checkNodeWorld {
	t.Helper()
	dir := t.TempDir()
	w := &checkNodeWorld{dir: dir, a: digest.FromString("layer a"), b: digest.FromString("layer b"),
		sock: filepath.Join(dir, "c.sock"), list: filepath.Join(dir, "list"), args: filepath.Join(dir, "args")}
	l, err := net.Listen("unix", w.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	hex := strings.Repeat("ab", 32)
	writeFile(t, dir, "delta.json", `{"version": 1, "base": {"source": "v1.lock", "lockfile-sha256": "`+hex+`"},
  "lockfile-sha256": "`+hex+`",
  "archives": [{"group": "core", "name": "core.tar", "size": 100, "sha256": "`+hex+`",
    "delta": {"name": "core.delta.tar", "size": 10, "sha256": "`+hex+`"},
    "from-base": [{"digest": "`+w.a.String()+`", "size": 7, "where": "group \"core\""},
                  {"digest": "`+w.b.String()+`", "size": 7, "where": "group \"core\""}]}]}`)
	w.ctr = writeFile(t, dir, "ctr", "#!/bin/sh\necho \"$@\" >"+w.args+"\nexec cat "+w.list+"\n")
	if err := os.Chmod(w.ctr, 0o755); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *checkNodeWorld) holds(t *testing.T, lines ...string) {
	t.Helper()
	writeFile(t, w.dir, "list", strings.Join(lines, "\n")+"\n")
}

func TestCheckNodeAsksCtr(t *testing.T) {
	w := newCheckNodeWorld(t)
	other := digest.FromString("other").String()

	w.holds(t, other, w.a.String(), w.b.String())
	out, code := run(t, "check-node", w.dir, "--address", w.sock, "--ctr", w.ctr)
	if code != exitOK || !strings.Contains(out, "the node holds all 2 layers the delta leaves out: core.delta.tar can go into its images directory") {
		t.Fatalf("node with every layer: exit %d\n%s", code, out)
	}
	if args, _ := os.ReadFile(w.args); strings.TrimSpace(string(args)) != "--address "+w.sock+" --namespace k8s.io content ls --quiet" {
		t.Errorf("ctr ran with %q", args)
	}

	// One layer missing: exit 1, what is missing and what to do instead.
	w.holds(t, other, w.b.String())
	out, code = run(t, "check-node", w.dir, "--address", w.sock, "--ctr", w.ctr, "-n", "other")
	for _, want := range []string{"missing: " + w.a.String() + " (7 bytes, in BASE's group \"core\"; for core.delta.tar)",
		"the node lacks 1 of the 2 layers the delta leaves out", "exit 0 but leave", "apply " + w.dir + " --base BASE_DIR -o OUT_DIR"} {
		if code != exitFailure || !strings.Contains(out, want) {
			t.Errorf("node lacking a layer: exit %d, want %d and %q\n%s", code, exitFailure, want, out)
		}
	}
	if args, _ := os.ReadFile(w.args); !strings.Contains(string(args), "--namespace other") {
		t.Errorf("ctr ran with %q", args)
	}
	out, code = run(t, "--json", "check-node", w.dir, "--address", w.sock, "--ctr", "sh "+w.ctr)
	var doc struct {
		OK       bool
		Missing  int
		Archives []struct{ Missing []struct{ Digest string } }
	}
	if code != exitFailure || json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &doc) != nil || doc.OK || doc.Missing != 1 || doc.Archives[0].Missing[0].Digest != w.a.String() {
		t.Errorf("--json, with --ctr \"sh CTR\": exit %d %+v\n%s", code, doc, out)
	}

	// An empty namespace is what a wrong -n looks like.
	w.holds(t)
	if out, code := run(t, "check-node", w.dir, "--address", w.sock, "--ctr", w.ctr); code != exitFailure || !strings.Contains(out, `namespace "k8s.io" holds no content at all`) {
		t.Errorf("empty store: exit %d\n%s", code, out)
	}
}

func TestCheckNodeSaysWhatIsWrong(t *testing.T) {
	w := newCheckNodeWorld(t)
	for _, tt := range []struct {
		name string
		args []string
		ctr  string // the fake ctr's script, when not the list
		code int
		want string
	}{
		{"no socket", []string{"--address", filepath.Join(w.dir, "nope.sock")}, "", exitFailure, "is not a containerd socket (is k3s or RKE2 running on this node?)"},
		{"not a socket", []string{"--address", w.list}, "", exitFailure, "give --address the node's containerd socket"},
		{"ctr fails", nil, "echo 'ctr: permission denied' >&2; exit 1", exitFailure, "run check-node as root"},
		{"not ctr", nil, "echo hello", exitFailure, `printed "hello", not a digest: is it containerd's ctr?`},
		{"no ctr", []string{"--ctr", filepath.Join(w.dir, "nothing")}, "", exitFailure, "give --ctr the ctr of the node's containerd"},
		{"empty --ctr", []string{"--ctr", " "}, "", exitUsage, "--ctr is empty"},
		{"no delta", []string{"--address", w.sock}, "", exitFailure, "delta.json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w.holds(t, w.a.String(), w.b.String())
			ctr := w.ctr
			if tt.ctr != "" {
				ctr = writeFile(t, t.TempDir(), "ctr", "#!/bin/sh\n"+tt.ctr+"\n")
				os.Chmod(ctr, 0o755)
			}
			args := []string{"check-node", w.dir, "--address", w.sock, "--ctr", ctr}
			if tt.name == "no delta" {
				args[1] = t.TempDir()
			}
			out, code := run(t, append(args, tt.args...)...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, want %d and %q\n%s", code, tt.code, tt.want, out)
			}
		})
	}
}
