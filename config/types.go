package config

import (
	"fmt"
	"sort"

	"github.com/BurntSushi/toml"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/internal/tomlpos"
)

// Before the strict decode, which stops at the first mismatch and says it
// in Go's words ("destination has type slice"), every known key is checked
// against the type it needs, so a spec's type errors come all at once, each
// at its line and in the spec's words.

type kind int

const (
	kString kind = iota
	kBool
	kStrings // an array of strings
	kTable
	kArray // any array; its elements are checked later
	kSize  // a whole number of bytes, or a string with a unit or a preset
	kAny
)

var (
	topKinds      = map[string]kind{"default-registry": kString, "platforms": kStrings, "index": kString, "output-dir": kString, "max-size": kSize, "cache": kBool}
	registryKinds = map[string]kind{"mirrors": kArray, "insecure": kBool, "ca-file": kString, "auth": kTable, "password": kAny, "username": kAny, "token": kAny}
	authKinds     = map[string]kind{"username": kString, "username-env": kString, "password-env": kString, "file": kString, "helper": kString, "password": kAny, "token": kAny}
	groupKinds    = map[string]kind{"name": kString, "archive": kString, "platforms": kStrings, "index": kString, "images": kStrings, "image-lists": kStrings, "manifests": kStrings, "signatures": kTable, "carry-signatures": kBool, "max-size": kSize, "split-oversize": kBool, "charts": kArray}
)

// examples show the right form in a type error.
var examples = map[string]string{
	"default-registry": `"docker.io"`,
	"platforms":        `["linux/amd64"]`,
	"index":            `"original"`,
	"output-dir":       `"dist"`,
	"images":           `["busybox:1.36"]`,
	"image-lists":      `["images.txt"]`,
	"manifests":        `["deploy/*.yaml"]`,
	"name":             `"core"`,
	"archive":          `"core.tar.zst"`,
	"ca-file":          `"ca.pem"`,
	"mirrors":          `["mirror.example.com"]`,
	"auth":             `{ helper = "ecr-login" }`,
	"helper":           `"ecr-login"`,
	"file":             `"~/.docker/config.json"`,
	"username":         `"ci"`,
	"username-env":     `"REGISTRY_USER"`,
	"password-env":     `"REGISTRY_PASSWORD"`,
	"max-size":         `"4GiB"`,
}

func (k kind) want(key string) string {
	var s string
	switch k {
	case kString:
		s = "a string"
	case kBool:
		return "true or false"
	case kStrings:
		s = "an array of strings"
	case kTable:
		s = "a table"
	case kArray:
		s = "an array"
	case kSize:
		s = `a size: bytes, or a string such as "4GiB", "4.7GB", "fat32", "dvd" or "bd25"`
		return s
	}
	if ex, ok := examples[key]; ok {
		s += ", e.g. " + ex
	} else if ex, ok := signatureExamples[key]; ok {
		s += ", e.g. " + ex
	}
	return s
}

func (k kind) fits(v any) bool {
	switch k {
	case kString:
		_, ok := v.(string)
		return ok
	case kBool:
		_, ok := v.(bool)
		return ok
	case kStrings:
		a, ok := v.([]any)
		if !ok {
			return false
		}
		for _, e := range a {
			if _, ok := e.(string); !ok {
				return false
			}
		}
		return true
	case kTable:
		_, ok := v.(map[string]any)
		return ok
	case kArray:
		switch v.(type) {
		case []any, []map[string]any:
			return true
		}
		return false
	case kSize:
		switch v.(type) {
		case int64, string:
			return true
		}
		return false
	}
	return true
}

// checkTypes reports every known key of data whose value has the wrong
// type. data has already been decoded by toml into a generic map.
func checkTypes(data map[string]any, loc *tomlpos.Locator, path string, errs *errorList) {
	at := func(p ...any) errdefs.Pos { return errdefs.Pos{File: path, Line: loc.Line(p...)} }
	check := func(kinds map[string]kind, table map[string]any, label string, p ...any) {
		for _, key := range sortedKeys(table) {
			k, known := kinds[key]
			if !known || k.fits(table[key]) {
				continue
			}
			errs.add(at(append(p, key)...), "%s%s must be %s", label, key, k.want(key))
		}
	}
	check(topKinds, data, "")
	if v, ok := data["registries"]; ok {
		regs, ok := v.(map[string]any)
		if !ok {
			errs.add(at("registries"), `registries must be a table of registries, e.g. [registries."docker.io"]`)
		}
		for _, host := range sortedKeys(regs) {
			r, ok := regs[host].(map[string]any)
			if !ok {
				errs.add(at("registries", host), "registries.%q must be a table, e.g. [registries.%q]", host, host)
				continue
			}
			check(registryKinds, r, fmt.Sprintf("registries.%q.", host), "registries", host)
			if a, ok := r["auth"].(map[string]any); ok {
				check(authKinds, a, fmt.Sprintf("registries.%q.auth.", host), "registries", host, "auth")
			}
		}
	}
	if v, ok := data["signatures"]; ok {
		entries, ok := tables(v)
		if !ok {
			errs.add(at("signatures"), "signatures must be an array of tables: write each entry as [[signatures]]")
		}
		for i, e := range entries {
			check(signatureKinds, e, fmt.Sprintf("signatures #%d: ", i+1), "signatures", i)
		}
	}
	if v, ok := data["group"]; ok {
		groups, ok := tables(v)
		if !ok {
			errs.add(at("group"), "group must be an array of tables: write each group as [[group]]")
			return
		}
		for i, g := range groups {
			label := fmt.Sprintf("group #%d: ", i+1)
			if name, ok := g["name"].(string); ok && name != "" {
				label = fmt.Sprintf("group %q: ", name)
			}
			check(groupKinds, g, label, "group", i)
			if sg, ok := g["signatures"].(map[string]any); ok {
				check(signatureKinds, sg, label+"signatures.", "group", i, "signatures")
			}
			if v, ok := g["charts"]; ok {
				charts, ok := tables(v)
				if !ok {
					errs.add(at("group", i, "charts"), "%scharts must be an array of tables: write each chart as [[group.charts]]", label)
					continue
				}
				for j, c := range charts {
					check(chartKinds, c, fmt.Sprintf("%schart #%d: ", label, j+1), "group", i, "charts", j)
				}
			}
		}
	}
}

// tables returns an array of tables, written as [[x]] or as an inline
// array x = [{...}] (an empty array counts).
func tables(v any) ([]map[string]any, bool) {
	switch t := v.(type) {
	case []map[string]any:
		return t, true
	case []any:
		out := make([]map[string]any, 0, len(t))
		for _, e := range t {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, false
			}
			out = append(out, m)
		}
		return out, true
	}
	return nil, false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// syntaxPos is where a TOML syntax error is (see tomlpos.Column).
func syntaxPos(src, path string, pe toml.ParseError) errdefs.Pos {
	return errdefs.Pos{File: path, Line: pe.Position.Line, Col: tomlpos.Column(src, pe.Position.Line, pe.Position.Start)}
}
