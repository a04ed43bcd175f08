package linkcheck

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestCheck(t *testing.T) {
	docs := "# Docs\n\n## Push: `--to` and `--json`\n\n## Usage\n\n## Usage\n\n### Node configuration: keep public names\n"
	tests := []struct {
		name string
		md   string   // README.md's content; docs/push.md holds docs
		want []string // the targets reported, in order
	}{
		{"good links", "[p](docs/push.md) [a](docs/push.md#usage) ![img](docs/)\n[self](#title)\n# Title\n", nil},
		{"missing file", "see [x](docs/nothere.md)\n", []string{"docs/nothere.md"}},
		{"missing anchor", "[x](docs/push.md#install)\n", []string{"docs/push.md#install"}},
		{"missing anchor in the same file", "# Title\n[x](#titel)\n", []string{"#titel"}},
		{"duplicate headings get -1, a third would be -2", "[a](docs/push.md#usage-1) [b](docs/push.md#usage-2)\n", []string{"docs/push.md#usage-2"}},
		{"punctuation and code removed, spaces kept as -", "[a](docs/push.md#push---to-and---json) [b](docs/push.md#node-configuration-keep-public-names)\n", nil},
		{"anchors are lower case", "[a](docs/push.md#Usage)\n", []string{"docs/push.md#Usage"}},
		{"links in code fences are ignored", "```\n[x](nothere.md)\n```\n~~~toml\n[y](gone.md)\n~~~\n", nil},
		{"headings in code fences make no anchors", "```\n# Fake\n```\n[x](#fake)\n", []string{"#fake"}},
		{"a longer fence holds a shorter one", "````\n```\n[x](nothere.md)\n````\n", nil},
		{"links in code spans are ignored", "`[x](nothere.md)` and ``a ` [y](gone.md)``\n", nil},
		{"a link whose text is code is read", "[`push`](docs/nothere.md)\n", []string{"docs/nothere.md"}},
		{"external links are not followed", "[a](https://example.com/x.md#y) <https://example.com> [m](mailto:a@example.com)\n", nil},
		{"reference definitions", "[a][p]\n\n[p]: docs/gone.md\n", []string{"docs/gone.md"}},
		{"titles and angle brackets", "[a](docs/push.md \"Push\") [b](<docs/gone.md>)\n", []string{"docs/gone.md"}},
		{"leaving the repository", "[a](../outside.md)\n", []string{"../outside.md"}},
		{"anchors of other files are not checked", "[a](main.go#L10)\n", nil},
		{"root-relative paths", "[a](/docs/push.md#usage)\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"README.md":    {Data: []byte(tt.md)},
				"docs/push.md": {Data: []byte(docs)},
				"main.go":      {Data: []byte("package main\n")},
			}
			problems, err := Check(fsys, []string{"README.md"})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range problems {
				got = append(got, p.Target)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("reported %q, want %q (%v)", got, tt.want, problems)
			}
		})
	}
}

// The report names the file and the line of the link, as compilers do.
func TestProblemPosition(t *testing.T) {
	fsys := fstest.MapFS{"docs/a.md": {Data: []byte("# A\n\ntext\n[x](b.md#nope)\n")}, "docs/b.md": {Data: []byte("# B\n")}}
	problems, err := Check(fsys, []string{"docs/a.md"})
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 {
		t.Fatalf("problems = %v", problems)
	}
	if got := problems[0].String(); !strings.HasPrefix(got, `docs/a.md:4: link "b.md#nope": `) || !strings.Contains(got, "docs/b.md") {
		t.Errorf("problem = %q", got)
	}
}

func TestSlug(t *testing.T) {
	for _, tt := range []struct{ heading, want string }{
		{"Install", "install"},
		{"What a bump changes: `lock --dry-run` and `diff`", "what-a-bump-changes-lock---dry-run-and-diff"},
		{"Multi-platform images: `index = \"original\"` or `\"filtered\"`", "multi-platform-images-index--original-or-filtered"},
		{"`--json`", "--json"},
		{"See [the spec](docs/spec.md)", "see-the-spec"},
		{"Errors **and** exit codes", "errors-and-exit-codes"},
		{"snake_case stays", "snake_case-stays"},
		{"Ünïcode letters stay ✔", "ünïcode-letters-stay-"},
	} {
		if got := Slug(tt.heading); got != tt.want {
			t.Errorf("Slug(%q) = %q, want %q", tt.heading, got, tt.want)
		}
	}
}

func TestAnchors(t *testing.T) {
	md := "# Title #\n\n## Same\n\n## Same\n\nnot # a heading\n#nospace\n    # indented code\n"
	got := Anchors([]byte(md))
	for _, a := range []string{"title", "same", "same-1"} {
		if !got[a] {
			t.Errorf("no anchor %q in %v", a, got)
		}
	}
	if len(got) != 3 {
		t.Errorf("anchors = %v, want 3", got)
	}
}
