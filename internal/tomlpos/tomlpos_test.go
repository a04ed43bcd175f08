package tomlpos

import (
	"testing"

	"github.com/BurntSushi/toml"
)

const doc = `# comment
default-registry = "docker.io"
platforms = ["linux/amd64",
  "linux/arm64"]   # trailing
registries."docker.io" = { mirrors = ["m.example.com"] }

[registries."r.example.com:5000"]
insecure = true
auth.password-env = "P"
notes = """
multi
line
"""
size = 1.5

[[group]]
name = "a"
images = [
  "busybox",     # one
  'alpine:3.19', # two
]

[[group]]
name = "b"

[[group.image]]
ref = "x"

[[group.image]]
ref = "y"
`

func TestLocator(t *testing.T) {
	var v map[string]any
	if _, err := toml.Decode(doc, &v); err != nil {
		t.Fatalf("fixture is not valid TOML: %v", err)
	}
	loc := New(doc)
	cases := []struct {
		path []any
		want int
	}{
		{[]any{"default-registry"}, 2},
		{[]any{"platforms"}, 3},
		{[]any{"platforms", 1}, 4},
		{[]any{"registries", "docker.io"}, 5},
		{[]any{"registries", "docker.io", "mirrors", 0}, 5},
		{[]any{"registries", "r.example.com:5000"}, 7},
		{[]any{"registries", "r.example.com:5000", "insecure"}, 8},
		{[]any{"registries", "r.example.com:5000", "auth", "password-env"}, 9},
		{[]any{"registries", "r.example.com:5000", "size"}, 14},
		{[]any{"group", 0}, 16},
		{[]any{"group", 0, "name"}, 17},
		{[]any{"group", 0, "images", 0}, 19},
		{[]any{"group", 0, "images", 1}, 20},
		{[]any{"group", 1, "name"}, 24},
		{[]any{"group", 1, "image", 0, "ref"}, 27},
		{[]any{"group", 1, "image", 1, "ref"}, 30},
		{[]any{"group", 1, "image", 1, "missing"}, 29}, // falls back to the table
		{[]any{"group", 0, "nope"}, 16},
		{[]any{"nothing"}, 0},
	}
	for _, c := range cases {
		if got := loc.Line(c.path...); got != c.want {
			t.Errorf("Line(%v) = %d, want %d", c.path, got, c.want)
		}
	}
}

func TestExactDoesNotFallBack(t *testing.T) {
	l := New("group = [ { name = \"a\", extra = 1 } ]\n")
	if line, ok := l.Exact("group", 0, "extra"); !ok || line != 1 {
		t.Errorf("Exact(group 0 extra) = %d, %v", line, ok)
	}
	if _, ok := l.Exact("group", 1); ok {
		t.Error("Exact(group 1) found an entry that does not exist")
	}
	if l.Line("group", 1) != 1 {
		t.Error("Line(group 1) no longer falls back to the array's line")
	}
}

func TestColumnStaysOnTheLine(t *testing.T) {
	for _, c := range []struct {
		src         string
		line, start int
		want        int
	}{
		{"name = \"abc\n", 1, 11, 11},     // the newline: clamped to the last character
		{"[[group]\nname = 1\n", 2, 8, 0}, // the offset is on line 1: no column
		{"x = 1 2\n", 1, 6, 7},
		{"é = \"x\n", 1, 7, 6}, // characters, not bytes
		{"", 1, 0, 0},
	} {
		if got := Column(c.src, c.line, c.start); got != c.want {
			t.Errorf("Column(%q, %d, %d) = %d, want %d", c.src, c.line, c.start, got, c.want)
		}
	}
}
