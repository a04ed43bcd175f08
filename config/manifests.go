package config

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
)

// podSpecPath is where each workload kind keeps its pod spec.
var podSpecPath = map[string][]string{
	"Pod":                   {"spec"},
	"Deployment":            {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"ReplicationController": {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
}

// containerKeys are the lists of a pod spec whose entries have an image.
var containerKeys = map[string]bool{"containers": true, "initContainers": true, "ephemeralContainers": true}

// yaml.v3 reports syntax errors as "yaml: line N: message".
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// FindImages is parseManifests for YAML that is not the spec's own (a
// chart's rendered templates): the images, or every problem at its line
// of file.
func FindImages(data []byte, file, defaultRegistry string) ([]Image, error) {
	var errs errorList
	imgs := parseManifests(data, file, defaultRegistry, &errs)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return imgs, nil
}

// parseManifests reads Kubernetes YAML (one or more documents, List
// objects included) and returns the image of every container,
// init container and ephemeral container of its workloads, in the order
// they are written, each at its line. Documents of other kinds are ignored.
func parseManifests(data []byte, file, defaultRegistry string, errs *errorList) []Image {
	lines := bytes.Count(data, []byte("\n")) + 1
	at := func(line int) errdefs.Pos {
		if line < 1 {
			line = 1
		}
		if line > lines {
			line = lines
		}
		return errdefs.Pos{File: file, Line: line}
	}
	w := &manifestWalk{defaultRegistry: defaultRegistry, at: at, errs: errs, done: map[*yaml.Node]bool{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			msg := err.Error()
			line := 0
			if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
				line, _ = strconv.Atoi(m[1])
				msg = m[2]
			} else {
				msg = strings.TrimPrefix(msg, "yaml: ")
			}
			errs.add(at(line), "Kubernetes YAML: %s", msg)
			break // the decoder cannot go on after a syntax error
		}
		root := &doc
		if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
			root = root.Content[0]
		}
		if !w.object(root, true) {
			break
		}
	}
	return w.out
}

// MaxManifestAliases bounds the YAML aliases one manifest file may use.
// Kubernetes YAML rarely has any; an alias bomb has many.
const MaxManifestAliases = 10000

// manifestWalk gathers the images of one file's objects. An alias names
// a node again; the walk reads each object and each container once,
// whatever names it, so that "- *deployment" repeated M times over K
// containers costs M+K, not M*K (an alias bomb: 100 KB of YAML took
// 1.37 GB and 20 s). The image found the second time would be the same
// image at the same line.
type manifestWalk struct {
	out             []Image
	defaultRegistry string
	at              func(int) errdefs.Pos
	errs            *errorList
	done            map[*yaml.Node]bool
	aliases         int
}

// resolve follows an alias to its anchored node, counting it. false once
// the file has used more aliases than MaxManifestAliases: reported once.
func (w *manifestWalk) resolve(n *yaml.Node) (*yaml.Node, bool) {
	if n != nil && n.Kind == yaml.AliasNode {
		if w.aliases++; w.aliases > MaxManifestAliases {
			if w.aliases == MaxManifestAliases+1 {
				w.errs.add(w.at(n.Line), "Kubernetes YAML: more than %d aliases in one file; refusing to expand them (write the objects out, or split the file)", MaxManifestAliases)
			}
			return nil, false
		}
	}
	return resolve(n), true
}

// once reports whether n is new to the walk, and marks it seen.
func (w *manifestWalk) once(n *yaml.Node) bool {
	if n == nil || w.done[n] {
		return false
	}
	w.done[n] = true
	return true
}

// object adds the images of one Kubernetes object, or of the items of a
// List when list is true (Lists do not nest). false when the walk must
// stop (too many aliases).
func (w *manifestWalk) object(n *yaml.Node, list bool) bool {
	obj, ok := w.resolve(n)
	if !ok {
		return false
	}
	if !w.once(obj) {
		return true
	}
	kind, _ := str(field(obj, "kind"))
	if kind == "List" && list {
		if items := field(obj, "items"); items != nil && items.Kind == yaml.SequenceNode {
			for _, it := range items.Content {
				if !w.object(it, false) {
					return false
				}
			}
		}
		return true
	}
	path, ok := podSpecPath[kind]
	if !ok {
		return true
	}
	pod := obj
	for _, k := range path {
		if pod = field(pod, k); pod == nil {
			return true
		}
	}
	if pod.Kind != yaml.MappingNode {
		return true
	}
	name, _ := str(field(field(obj, "metadata"), "name"))
	for i := 0; i+1 < len(pod.Content); i += 2 {
		key := pod.Content[i]
		list, ok := w.resolve(pod.Content[i+1])
		if !ok {
			return false
		}
		if key.Kind != yaml.ScalarNode || !containerKeys[key.Value] || list == nil || list.Kind != yaml.SequenceNode || !w.once(list) {
			continue
		}
		for _, item := range list.Content {
			c, ok := w.resolve(item)
			if !ok {
				return false
			}
			if w.once(c) {
				w.container(c, kind, name)
			}
		}
	}
	return true
}

// container adds the image of one container of a workload.
func (w *manifestWalk) container(c *yaml.Node, kind, name string) {
	v := field(c, "image")
	if v == nil {
		return
	}
	where := kind
	if name != "" {
		where += " " + strconv.Quote(name)
	}
	if cn, ok := str(field(c, "name")); ok {
		where += ": container " + strconv.Quote(cn)
	}
	s, ok := str(v)
	if !ok {
		w.errs.add(w.at(v.Line), "%s: image must be a string, found %s", where, describe(v))
		return
	}
	ref, err := image.ParseReference(s, w.defaultRegistry)
	if err != nil {
		w.errs.add(w.at(v.Line), "%s: %v", where, err)
		return
	}
	w.out = append(w.out, Image{Ref: ref, Pos: w.at(v.Line)})
}

// describe names a YAML value that is not a string, for a message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "null"
		}
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return v + " (" + strings.TrimPrefix(n.ShortTag(), "!!") + ")"
	}
	return "no string"
}

// resolve follows an alias to its anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	return n
}

// field returns the value of key in a mapping node, or nil.
func field(n *yaml.Node, key string) *yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return resolve(n.Content[i+1])
		}
	}
	return nil
}

// str returns a plain string scalar's value.
func str(n *yaml.Node) (string, bool) {
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return "", false
	}
	return n.Value, true
}
