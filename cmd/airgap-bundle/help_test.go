package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/airgap-bundle/airgap-bundle/internal/linkcheck"
)

// Every command's --help ends with the link to its manual page, and that
// page (and its #anchor) exists in the repository.
func TestHelpEndsWithManual(t *testing.T) {
	root := newRootCmd()
	// cobra adds these two when the command runs; the walk must see them.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var paths [][]string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		paths = append(paths, strings.Fields(c.CommandPath())[1:])
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if len(paths) < 12 {
		t.Fatalf("only %d commands found: %v", len(paths), paths)
	}
	repo := os.DirFS("../..")
	prefix := repoURL + "/blob/" + docRef() + "/"
	for _, p := range paths {
		name := strings.Join(append([]string{"airgap-bundle"}, p...), " ")
		t.Run(name, func(t *testing.T) {
			c := newRootCmd()
			var out bytes.Buffer
			c.SetOut(&out)
			c.SetErr(&out)
			c.SetArgs(append(p, "--help"))
			if err := c.Execute(); err != nil {
				t.Fatalf("%s --help: %v", name, err)
			}
			lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
			last := lines[len(lines)-1]
			page, ok := strings.CutPrefix(last, "Manual: "+prefix)
			if !ok {
				t.Fatalf("%s --help ends with %q, not a manual link under %s", name, last, prefix)
			}
			if err := linkcheck.Resolve(repo, "README.md", page); err != nil {
				t.Errorf("%s --help: manual %s: %v", name, page, err)
			}
		})
	}
}

// A new command names its own page: falling back to the README would hide
// that its manual was never written.
func TestEveryCommandHasItsOwnManual(t *testing.T) {
	root := newRootCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if _, ok := manuals[c.Name()]; !ok {
			t.Errorf("command %q has no entry in manuals (root.go)", c.Name())
		}
	}
}

// The links point at the docs of the release the binary is, when it is one.
func TestDocRef(t *testing.T) {
	defer func(v string) { version = v }(version)
	for _, tt := range []struct{ version, want string }{
		{"v1.2.3", "v1.2.3"},
		{"v0.10.0", "v0.10.0"},
		{"v1.2.3-4-gabcdef0", "main"},
		{"v1.2.3-dirty", "main"},
		{"ddc4d8b", "main"},
	} {
		version = tt.version
		if got := docRef(); got != tt.want {
			t.Errorf("version %s: docRef() = %s, want %s", tt.version, got, tt.want)
		}
	}
}
