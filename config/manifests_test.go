package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
)

const pin = "sha256:7031c1b283388d2c2e09b57badb803c05ebed362dc88d84b480cc47f72a21097"

func TestManifests(t *testing.T) {
	spec := filepath.Join("..", "testdata", "specs", "valid", "manifests.toml")
	s, err := Load(spec)
	if err != nil {
		t.Fatal(err)
	}
	k8s := filepath.Join("..", "testdata", "specs", "valid", "k8s")
	var got []string
	for _, img := range s.Group("app").Images {
		got = append(got, fmt.Sprintf("%s %s", img.Pos, img.Ref))
	}
	want := []string{
		"01-deployment.yaml:19 docker.io/library/nginx:1.25",
		"01-deployment.yaml:23 ghcr.io/example/log-shipper:v2.1.0",
		"01-deployment.yaml:27 docker.io/library/busybox:1.36", // init container, after the containers in the file
		"02-statefulset.yaml:16 docker.io/library/postgres:16.3",
		// 03-daemonset.yaml:18 busybox:1.36 is a duplicate
		"03-daemonset.yaml:21 quay.io/prometheus/node-exporter:v1.8.1",
		"04-job.yaml:12 registry.example.com/team/migrate@" + pin,
		"05-cronjob.yaml:14 docker.io/bitnami/kubectl:1.30",
		// 06-pod.yaml:8 docker.io/library/nginx:1.25 is a duplicate
		"06-pod.yaml:11 docker.io/library/alpine:3.20", // ephemeral container
		"07-list.yaml:14 docker.io/library/redis:7.2",
		"07-list.yaml:24 registry.k8s.io/pause:3.9",
		"08-multi.yaml:32 ghcr.io/example/api:1.4.2", // the Service and ConfigMap are skipped
	}
	for i := range want {
		want[i] = filepath.Join(k8s, want[i])
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("images:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A spec's own images come first; manifests add to them, and short names
// take the spec's default registry.
func TestManifestsDefaultRegistry(t *testing.T) {
	p := writeSpec(t, "default-registry = \"registry.example.com\"\n[[group]]\nname = \"a\"\nimages = [\"nginx:1.25\"]\nmanifests = [\"*.yml\"]\n",
		map[string]string{"p.yml": "kind: Pod\nspec:\n  containers:\n  - image: nginx:1.25\n  - image: tools/curl\n"})
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, img := range s.Groups[0].Images {
		got = append(got, fmt.Sprintf("%d %s", img.Pos.Line, img.Ref))
	}
	if w := "4 registry.example.com/nginx:1.25|5 registry.example.com/tools/curl:latest"; strings.Join(got, "|") != w {
		t.Errorf("got %q, want %q", strings.Join(got, "|"), w)
	}
}

func TestManifestErrors(t *testing.T) {
	p := writeSpec(t, `[[group]]
name = "a"
manifests = [
  "bad-*.yaml",
  "none/*.yaml",
  "ok.yaml",
]

[[group]]
name = "b"
manifests = ["empty.yaml"]
`, map[string]string{
		"bad-1.yaml": "kind: Pod\nspec:\n  containers:\n  - name: a\n    image: 42\n  - name: b\n    image: \"UPPER/case\"\n  - name: c\n    image: [x]\n",
		"bad-2.yaml": "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - image: busybox\n---\nkind: Pod\nspec: {containers: [{image: ok}]\n  bad: indent\n",
		"ok.yaml":    "kind: Pod\nspec:\n  containers:\n  - image: busybox\n",
		"empty.yaml": "kind: Service\nmetadata:\n  name: s\n",
	})
	_, err := Load(p)
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, errdefs.ErrSpec) {
		t.Errorf("not ErrSpec: %v", err)
	}
	dir := filepath.Dir(p)
	msg := err.Error()
	for _, w := range []string{
		filepath.Join(dir, "bad-1.yaml") + `:5: Pod: container "a": image must be a string, found 42 (int)`,
		filepath.Join(dir, "bad-1.yaml") + `:7: Pod: container "b": image reference "UPPER/case"`,
		filepath.Join(dir, "bad-1.yaml") + `:9: Pod: container "c": image must be a string, found a list`,
		filepath.Join(dir, "bad-2.yaml") + `:8: Kubernetes YAML: did not find expected`,
		p + `:5: group "a": manifests glob "none/*.yaml" matches no file`,
		p + `:11: group "b" has no images: its manifests hold no workload with a container image`,
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q:\n%s", w, msg)
		}
	}
	if n := len(unwrapAll(err)); n != 6 {
		t.Errorf("%d problems, want 6:\n%s", n, msg)
	}
}

func TestManifestsKeyType(t *testing.T) {
	p := writeSpec(t, "[[group]]\nname = \"a\"\nmanifests = \"deploy/*.yaml\"\n", nil)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), `bundle.toml:3: group "a": manifests must be an array of strings, e.g. ["deploy/*.yaml"]`) {
		t.Errorf("err = %v", err)
	}
	p = writeSpec(t, "[[group]]\nname = \"a\"\nmanifests = [\"\"]\n", nil)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "manifests[0] is empty") {
		t.Errorf("err = %v", err)
	}
	p = writeSpec(t, "[[group]]\nname = \"a\"\nmanifests = [\"[\"]\n", nil)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), `manifests glob "["`) {
		t.Errorf("err = %v", err)
	}
}

// aliasBomb is a List of m items that are all one anchored Deployment of
// k containers: about 50*k bytes that name m*k containers.
func aliasBomb(m, k int) []byte {
	var b strings.Builder
	b.WriteString("kind: List\nitems:\n- &d\n  kind: Deployment\n  spec:\n    template:\n      spec:\n        containers:\n")
	for i := range k {
		fmt.Fprintf(&b, "        - {name: c%d, image: \"registry.example.com/app%d:1\"}\n", i, i)
	}
	for range m - 1 {
		b.WriteString("- *d\n")
	}
	return []byte(b.String())
}

// An alias bomb (M items naming one Deployment of K containers) costs
// M+K, not M*K: each container is read once (the old walk read 4 million
// containers for 100 KB of YAML, 1.37 GB and 20 s).
func TestManifestAliasBomb(t *testing.T) {
	const m, k = 2000, 2000
	var errs errorList
	imgs := parseManifests(aliasBomb(m, k), "bomb.yaml", "docker.io", &errs)
	if err := errs.err(); err != nil {
		t.Fatal(err)
	}
	if len(imgs) != k {
		t.Fatalf("%d images read from %d distinct containers", len(imgs), k)
	}
}

// Past MaxManifestAliases aliases in one file the walk stops with one
// error at the alias's line.
func TestManifestTooManyAliases(t *testing.T) {
	data := aliasBomb(MaxManifestAliases+2, 1)
	var errs errorList
	imgs := parseManifests(data, "bomb.yaml", "docker.io", &errs)
	if len(errs.errs) != 1 {
		t.Fatalf("%d errors, want 1: %v", len(errs.errs), errs.err())
	}
	msg := errs.errs[0].Error()
	if !strings.Contains(msg, fmt.Sprintf("more than %d aliases", MaxManifestAliases)) || !strings.Contains(msg, fmt.Sprintf("bomb.yaml:%d:", MaxManifestAliases+1+9)) {
		t.Fatalf("error %q does not give the cap and the line of the alias past it", msg)
	}
	if len(imgs) != 1 {
		t.Fatalf("%d images, want the 1 read before the cap", len(imgs))
	}
}
