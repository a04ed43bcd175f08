// Package linkcheck finds the links of Markdown files that lead nowhere: a
// relative link to a file that does not exist, or an #anchor that no
// heading of its target produces under GitHub's rules. The documentation is
// split over many pages that point into each other, and a renamed heading
// or a moved section breaks those pointers silently; make lint runs this
// over every tracked *.md.
//
// It reads the Markdown GitHub renders, as far as links go: ATX headings
// (# to ######), inline links and images, reference definitions, fenced
// code blocks (``` and ~~~) and code spans, whose content is never a link.
// Links with a scheme (https:, mailto:) are not followed: an external page
// is not this repository's to keep.
package linkcheck

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Problem is one link that leads nowhere.
type Problem struct {
	File   string // the Markdown file, as given to Check
	Line   int    // 1-based
	Target string // the link as written
	Reason string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: link %q: %s", p.File, p.Line, p.Target, p.Reason)
}

// Link is one link of a document.
type Link struct {
	Line   int
	Target string
}

// Check reads each Markdown file (slash-separated paths in fsys) and returns
// every link of them that leads nowhere, in file and line order.
func Check(fsys fs.FS, files []string) ([]Problem, error) {
	c := &checker{fsys: fsys, anchors: map[string]map[string]bool{}}
	var out []Problem
	for _, f := range files {
		md, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		for _, l := range Links(md) {
			if err := c.resolve(f, l.Target); err != nil {
				out = append(out, Problem{File: f, Line: l.Line, Target: l.Target, Reason: err.Error()})
			}
		}
	}
	return out, nil
}

// Resolve reports whether target, a link written in the Markdown file from,
// leads somewhere: the file exists and, for a Markdown file, so does the
// anchor.
func Resolve(fsys fs.FS, from, target string) error {
	c := &checker{fsys: fsys, anchors: map[string]map[string]bool{}}
	return c.resolve(from, target)
}

type checker struct {
	fsys    fs.FS
	anchors map[string]map[string]bool // by file, read once
}

var scheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)

func (c *checker) resolve(from, target string) error {
	if scheme.MatchString(target) || strings.HasPrefix(target, "//") {
		return nil
	}
	p, frag, _ := strings.Cut(target, "#")
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	p, err := url.PathUnescape(p)
	if err != nil {
		return fmt.Errorf("bad escape in the path: %v", err)
	}
	file := from
	if p != "" {
		// GitHub reads a leading / as the repository's root.
		if strings.HasPrefix(p, "/") {
			file = path.Clean(strings.TrimPrefix(p, "/"))
		} else {
			file = path.Join(path.Dir(from), p)
		}
		if file == ".." || strings.HasPrefix(file, "../") {
			return fmt.Errorf("leaves the repository")
		}
		if _, err := fs.Stat(c.fsys, file); err != nil {
			return fmt.Errorf("%s does not exist", file)
		}
	}
	if frag == "" || !strings.HasSuffix(strings.ToLower(file), ".md") {
		// Anchors of other files (a line of source, #L10) are GitHub's
		// view of them, not headings.
		return nil
	}
	a, err := c.fileAnchors(file)
	if err != nil {
		return err
	}
	frag, err = url.PathUnescape(frag)
	if err != nil {
		return fmt.Errorf("bad escape in the anchor: %v", err)
	}
	if !a[frag] {
		return fmt.Errorf("no heading of %s has the anchor #%s", file, frag)
	}
	return nil
}

func (c *checker) fileAnchors(file string) (map[string]bool, error) {
	if a, ok := c.anchors[file]; ok {
		return a, nil
	}
	md, err := fs.ReadFile(c.fsys, file)
	if err != nil {
		return nil, err
	}
	a := Anchors(md)
	c.anchors[file] = a
	return a, nil
}

// lines calls fn for each line of md outside fenced code blocks.
func lines(md []byte, fn func(n int, line string)) {
	s := bufio.NewScanner(bytes.NewReader(md))
	s.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	var fence string // the opening fence while inside a block
	for n := 1; s.Scan(); n++ {
		line := s.Text()
		trimmed := strings.TrimLeft(line, " ")
		indent := len(line) - len(trimmed)
		if fence != "" {
			// A closing fence: the same character, at least as long, nothing after.
			if indent < 4 && strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]+" \t") == "" {
				fence = ""
			}
			continue
		}
		if indent < 4 {
			if f := fenceOf(trimmed); f != "" {
				fence = f
				continue
			}
		}
		fn(n, line)
	}
}

// fenceOf returns the fence a line opens (``` or ~~~, three or more), or "".
func fenceOf(s string) string {
	for _, ch := range []byte{'`', '~'} {
		n := 0
		for n < len(s) && s[n] == ch {
			n++
		}
		// A backtick fence's info string may not hold a backtick.
		if n >= 3 && (ch == '~' || !strings.Contains(s[n:], "`")) {
			return s[:n]
		}
	}
	return ""
}

var (
	heading    = regexp.MustCompile(`^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)
	inlineLink = regexp.MustCompile(`!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*(<[^>]*>|[^\s)]*)(?:\s+(?:"[^"]*"|'[^']*'|\([^)]*\)))?\s*\)`)
	refDef     = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)`)
	autolink   = regexp.MustCompile(`<[a-zA-Z][a-zA-Z0-9+.-]*:[^>\s]*>`)
	htmlTag    = regexp.MustCompile(`<[^>]*>`)
)

// blankCode replaces code spans with x's of the same length, so that what
// they hold is never read as a link. A span opens with a run of backticks
// and closes at the next run of the same length; a run never closed is
// literal backticks.
func blankCode(line string) string {
	b := []byte(line)
	for i := 0; i < len(b); {
		if b[i] != '`' {
			i++
			continue
		}
		n := run(b, i)
		end := -1
		for j := i + n; j < len(b); {
			if b[j] != '`' {
				j++
				continue
			}
			m := run(b, j)
			if m == n {
				end = j + m
				break
			}
			j += m
		}
		if end < 0 {
			i += n
			continue
		}
		for k := i; k < end; k++ {
			b[k] = 'x'
		}
		i = end
	}
	return string(b)
}

// run is the length of the run of backticks at b[i].
func run(b []byte, i int) int {
	n := 0
	for i+n < len(b) && b[i+n] == '`' {
		n++
	}
	return n
}

// Links returns the links of a Markdown document, outside code.
func Links(md []byte) []Link {
	var out []Link
	lines(md, func(n int, line string) {
		line = blankCode(line)
		if m := refDef.FindStringSubmatch(line); m != nil {
			out = append(out, Link{Line: n, Target: strings.Trim(m[1], "<>")})
			return
		}
		line = autolink.ReplaceAllString(line, "")
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			out = append(out, Link{Line: n, Target: strings.Trim(m[2], "<>")})
		}
	})
	return out
}

// Anchors returns the anchors GitHub gives the headings of a Markdown
// document: Slug of each, with -1, -2, ... added to repeats.
func Anchors(md []byte) map[string]bool {
	out := map[string]bool{}
	lines(md, func(_ int, line string) {
		m := heading.FindStringSubmatch(line)
		if m == nil {
			return
		}
		base := Slug(m[2])
		a := base
		for i := 1; out[a]; i++ {
			a = base + "-" + strconv.Itoa(i)
		}
		out[a] = true
	})
	return out
}

var linkText = regexp.MustCompile(`!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)`)

// Slug is GitHub's anchor for a heading's text: the text as rendered (link
// text without the target, no markup), lowercased, every character that is
// not a letter, a digit, '-', '_' or a space removed, and each space made
// a '-'.
func Slug(text string) string {
	text = linkText.ReplaceAllString(text, "$1")
	text = htmlTag.ReplaceAllString(text, "")
	text = strings.TrimSpace(text)
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
