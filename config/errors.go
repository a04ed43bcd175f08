package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/go-multierror"
)

// Pos is a place in a spec or image-list file.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	switch {
	case p.File == "":
		return ""
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
}

// Error is one problem in a spec, at a place.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string {
	if s := e.Pos.String(); s != "" {
		return s + ": " + e.Msg
	}
	return e.Msg
}

// ErrSpec marks every error that comes from the spec's content rather than
// from the environment, so a command can choose its exit code with errors.Is.
var ErrSpec = errors.New("invalid spec")

func (e *Error) Is(target error) bool { return target == ErrSpec }

// ListFormat prints gathered errors one per line, with a count, so a user
// fixing a spec sees every problem at once.
func ListFormat(errs []error) string {
	if len(errs) == 1 {
		return errs[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(errs))
	for _, e := range errs {
		b.WriteString("\n  ")
		b.WriteString(strings.ReplaceAll(e.Error(), "\n", "\n    "))
	}
	return b.String()
}

// errorList gathers errors in the order they are found.
type errorList struct{ m *multierror.Error }

func (l *errorList) add(pos Pos, format string, args ...any) {
	l.m = multierror.Append(l.m, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (l *errorList) count() int {
	if l.m == nil {
		return 0
	}
	return len(l.m.Errors)
}

func (l *errorList) err() error {
	if l.m == nil {
		return nil
	}
	// Report in reading order: the spec's problems by line, then each
	// image list's.
	sort.SliceStable(l.m.Errors, func(i, j int) bool {
		a, b := l.m.Errors[i].(*Error).Pos, l.m.Errors[j].(*Error).Pos
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	l.m.ErrorFormat = ListFormat
	return l.m
}
