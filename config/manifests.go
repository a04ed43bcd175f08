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
	var out []Image
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
		out = objectImages(resolve(root), out, defaultRegistry, at, errs, true)
	}
	return out
}

// objectImages adds the images of one Kubernetes object, or of the items
// of a List when list is true (Lists do not nest).
func objectImages(obj *yaml.Node, out []Image, defaultRegistry string, at func(int) errdefs.Pos, errs *errorList, list bool) []Image {
	kind, _ := str(field(obj, "kind"))
	if kind == "List" && list {
		if items := field(obj, "items"); items != nil && items.Kind == yaml.SequenceNode {
			for _, it := range items.Content {
				out = objectImages(resolve(it), out, defaultRegistry, at, errs, false)
			}
		}
		return out
	}
	path, ok := podSpecPath[kind]
	if !ok {
		return out
	}
	pod := obj
	for _, k := range path {
		if pod = field(pod, k); pod == nil {
			return out
		}
	}
	if pod.Kind != yaml.MappingNode {
		return out
	}
	name, _ := str(field(field(obj, "metadata"), "name"))
	for i := 0; i+1 < len(pod.Content); i += 2 {
		key, list := pod.Content[i], resolve(pod.Content[i+1])
		if key.Kind != yaml.ScalarNode || !containerKeys[key.Value] || list == nil || list.Kind != yaml.SequenceNode {
			continue
		}
		for _, c := range list.Content {
			v := field(c, "image")
			if v == nil {
				continue
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
				errs.add(at(v.Line), "%s: image must be a string, found %s", where, describe(v))
				continue
			}
			ref, err := image.ParseReference(s, defaultRegistry)
			if err != nil {
				errs.add(at(v.Line), "%s: %v", where, err)
				continue
			}
			out = append(out, Image{Ref: ref, Pos: at(v.Line)})
		}
	}
	return out
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
