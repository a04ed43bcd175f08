// Package tomlpos finds the line of a key or array element in a TOML document.
//
// BurntSushi/toml reports positions for syntax and type errors only; the
// checks that come after decoding (a bad reference, a duplicate group name)
// need the same file:line, so this package re-scans the already valid text
// and records where every key and array element starts.
package tomlpos

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Locator maps key paths to 1-based line numbers. Array-of-tables entries and
// array elements are addressed by their index, e.g. ("group", 2, "images", 0).
type Locator struct {
	lines map[string]int
}

// Path builds a lookup key from strings and ints.
func Path(parts ...any) []string {
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			out = append(out, v)
		case int:
			out = append(out, strconv.Itoa(v))
		default:
			panic("tomlpos: path part must be string or int")
		}
	}
	return out
}

// Line returns the line of the deepest recorded prefix of path, so an error
// about a key that is absent points at its table. It returns 0 when nothing
// matches.
func (l *Locator) Line(parts ...any) int {
	if l == nil {
		return 0
	}
	p := Path(parts...)
	for n := len(p); n > 0; n-- {
		if line, ok := l.lines[join(p[:n])]; ok {
			return line
		}
	}
	return 0
}

// Exact returns the line recorded for path itself, without falling back to
// a prefix, and whether path was recorded at all. Loops that walk array
// entries ("group", 0), ("group", 1), ... must stop on !ok: Line would
// answer with the array's own line for every index and never end.
func (l *Locator) Exact(parts ...any) (int, bool) {
	if l == nil {
		return 0, false
	}
	line, ok := l.lines[join(Path(parts...))]
	return line, ok
}

func join(p []string) string { return strings.Join(p, "\x1f") }

// New scans src. It expects a document BurntSushi/toml has already accepted;
// on text it does not understand it records what it can and stops.
func New(src string) *Locator {
	s := &scanner{src: src, line: 1}
	p := &parser{s: s, loc: &Locator{lines: map[string]int{}}, arrays: map[string]int{}}
	p.document()
	return p.loc
}

type tokKind int

const (
	tEOF tokKind = iota
	tNewline
	tWord   // bare key or bare value (numbers, dates, booleans)
	tString // any quoted string; text holds the decoded-enough key
	tPunct  // one of [ ] { } = , .
)

type token struct {
	kind tokKind
	text string
	line int
}

type scanner struct {
	src  string
	pos  int
	line int
	peek *token
}

func (s *scanner) next() token {
	if s.peek != nil {
		t := *s.peek
		s.peek = nil
		return t
	}
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			s.pos++
		case c == '#':
			for s.pos < len(s.src) && s.src[s.pos] != '\n' {
				s.pos++
			}
		case c == '\n':
			s.pos++
			s.line++
			return token{kind: tNewline, line: s.line - 1}
		case strings.ContainsRune("[]{}=,.", rune(c)):
			s.pos++
			return token{kind: tPunct, text: string(c), line: s.line}
		case c == '"' || c == '\'':
			return s.str(c)
		default:
			start, line := s.pos, s.line
			for s.pos < len(s.src) && !strings.ContainsRune(" \t\r\n#[]{}=,\"'", rune(s.src[s.pos])) {
				s.pos++
			}
			if s.pos == start { // unknown byte: skip it rather than loop
				s.pos++
				continue
			}
			return token{kind: tWord, text: s.src[start:s.pos], line: line}
		}
	}
	return token{kind: tEOF, line: s.line}
}

func (s *scanner) unread(t token) { s.peek = &t }

// str scans a basic or literal string, single- or multi-line. Escapes are
// kept only far enough to find the end; keys with escapes are rare and an
// approximate key only costs a less precise line.
func (s *scanner) str(q byte) token {
	line := s.line
	triple := strings.HasPrefix(s.src[s.pos:], strings.Repeat(string(q), 3))
	if triple {
		s.pos += 3
		end := strings.Index(s.src[s.pos:], strings.Repeat(string(q), 3))
		if end < 0 {
			end = len(s.src) - s.pos
		}
		body := s.src[s.pos : s.pos+end]
		s.line += strings.Count(body, "\n")
		s.pos += end + 3
		for s.pos < len(s.src) && s.src[s.pos] == q { // up to two extra quotes belong to the body
			s.pos++
		}
		return token{kind: tString, text: body, line: line}
	}
	s.pos++
	var b strings.Builder
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		if c == '\\' && q == '"' && s.pos+1 < len(s.src) {
			b.WriteByte(s.src[s.pos+1])
			s.pos += 2
			continue
		}
		s.pos++
		if c == q || c == '\n' {
			if c == '\n' {
				s.line++
			}
			break
		}
		b.WriteByte(c)
	}
	return token{kind: tString, text: b.String(), line: line}
}

type parser struct {
	s      *scanner
	loc    *Locator
	table  []string       // current table path, with array indices resolved
	arrays map[string]int // array-of-tables path -> index of its last entry
}

func (p *parser) record(path []string, line int) {
	k := join(path)
	if _, ok := p.loc.lines[k]; !ok {
		p.loc.lines[k] = line
	}
}

func (p *parser) document() {
	for {
		t := p.s.next()
		switch {
		case t.kind == tEOF:
			return
		case t.kind == tNewline:
			continue
		case t.kind == tPunct && t.text == "[":
			if !p.header(t.line) {
				return
			}
		case t.kind == tWord || t.kind == tString:
			p.s.unread(t)
			if !p.keyValue(p.table) {
				return
			}
		default:
			return
		}
	}
}

// header parses [a.b] or [[a.b]] after the first "[".
func (p *parser) header(line int) bool {
	t := p.s.next()
	array := t.kind == tPunct && t.text == "["
	if !array {
		p.s.unread(t)
	}
	keys, ok := p.keys()
	if !ok {
		return false
	}
	for i := 0; i < 1+boolInt(array); i++ {
		if t := p.s.next(); t.kind != tPunct || t.text != "]" {
			return false
		}
	}
	path := p.resolve(keys)
	if array {
		k := join(path)
		idx := 0
		if n, seen := p.arrays[k]; seen {
			idx = n + 1
		}
		p.arrays[k] = idx
		p.record(path, line)
		path = append(path, strconv.Itoa(idx))
	}
	p.record(path, line)
	p.table = path
	return true
}

// resolve turns a header's keys into a path, inserting the current index of
// every array of tables it passes through.
func (p *parser) resolve(keys []string) []string {
	var path []string
	for i, k := range keys {
		path = append(path, k)
		if i == len(keys)-1 {
			break
		}
		if n, ok := p.arrays[join(path)]; ok {
			path = append(path, strconv.Itoa(n))
		}
	}
	return path
}

// keys reads a possibly dotted key. Bare words may carry the dots
// themselves ("a.b", "registries." before a quoted part).
func (p *parser) keys() ([]string, bool) {
	var out []string
	wantMore := true
	for wantMore {
		t := p.s.next()
		switch t.kind {
		case tString:
			out = append(out, t.text)
			wantMore = false
		case tWord:
			for _, part := range strings.Split(t.text, ".") {
				if part != "" {
					out = append(out, part)
				}
			}
			wantMore = strings.HasSuffix(t.text, ".")
		default:
			return nil, false
		}
		if wantMore {
			continue
		}
		n := p.s.next()
		switch {
		case n.kind == tPunct && n.text == ".":
			wantMore = true
		case n.kind == tWord && strings.HasPrefix(n.text, "."):
			p.s.unread(token{kind: tWord, text: n.text[1:], line: n.line})
			wantMore = true
		default:
			p.s.unread(n)
		}
	}
	return out, len(out) > 0
}

func (p *parser) keyValue(base []string) bool {
	first := p.s.next()
	p.s.unread(first)
	keys, ok := p.keys()
	if !ok {
		return false
	}
	path := append(append([]string{}, base...), keys...)
	for i := len(base) + 1; i <= len(path); i++ {
		p.record(path[:i], first.line)
	}
	if t := p.s.next(); t.kind != tPunct || t.text != "=" {
		return false
	}
	return p.value(path)
}

func (p *parser) value(path []string) bool {
	t := p.s.next()
	for t.kind == tNewline {
		t = p.s.next()
	}
	p.record(path, t.line)
	switch {
	case t.kind == tWord || t.kind == tString:
		// A bare value such as 1.5 or a date was split at "." and "," only
		// where those cannot occur; swallow trailing word pieces.
		for {
			n := p.s.next()
			if n.kind == tPunct && n.text == "." {
				continue
			}
			if n.kind == tWord && n.line == t.line {
				continue
			}
			p.s.unread(n)
			return true
		}
	case t.kind == tPunct && t.text == "[":
		for i := 0; ; {
			n := p.s.next()
			for n.kind == tNewline {
				n = p.s.next()
			}
			if n.kind == tPunct && n.text == "]" {
				return true
			}
			if n.kind == tPunct && n.text == "," {
				continue
			}
			if n.kind == tEOF {
				return false
			}
			p.s.unread(n)
			if !p.value(append(append([]string{}, path...), strconv.Itoa(i))) {
				return false
			}
			i++
		}
	case t.kind == tPunct && t.text == "{":
		for {
			n := p.s.next()
			if n.kind == tPunct && n.text == "}" {
				return true
			}
			if n.kind == tPunct && n.text == "," || n.kind == tNewline {
				continue
			}
			if n.kind == tEOF {
				return false
			}
			p.s.unread(n)
			if !p.keyValue(path) {
				return false
			}
		}
	}
	return false
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Column is the 1-based column, in characters, of the byte offset start of
// src, for an error that BurntSushi/toml reports on line. Its own column is
// computed apart from its line and can name a column past the line's end
// (the newline of an unterminated string, or the next line's start): this
// one is kept only when start falls on line, and is clamped to that line's
// last character. It returns 0 (no column) otherwise.
func Column(src string, line, start int) int {
	if line < 1 || start < 0 || start > len(src) || strings.Count(src[:start], "\n")+1 != line {
		return 0
	}
	lineStart := strings.LastIndexByte(src[:start], '\n') + 1
	lineEnd := strings.IndexByte(src[lineStart:], '\n')
	if lineEnd < 0 {
		lineEnd = len(src)
	} else {
		lineEnd += lineStart
	}
	width := utf8.RuneCountInString(strings.TrimRight(src[lineStart:lineEnd], "\r"))
	col := utf8.RuneCountInString(src[lineStart:start]) + 1
	if col > width {
		col = width
	}
	return max(col, 0)
}
