// Package errdefs holds the classes of errors the tool reports and the
// positioned error that carries most of them. Commands choose exit codes
// with errors.Is against the classes; every layer wraps with %w, so a class
// and the underlying cause (context.Canceled, a digest mismatch, an
// authentication failure) stay in one chain.
package errdefs

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/go-multierror"
)

// Classes of errors. Each is a sentinel to test with errors.Is.
var (
	ErrSpec          = errors.New("invalid spec")            // bundle.toml or an image list
	ErrLockfile      = errors.New("invalid lockfile")        // bundle.lock
	ErrUsage         = errors.New("usage")                   // command line
	ErrLockOutOfDate = errors.New("lockfile is out of date") // lockfile does not match the spec
	ErrRegistry      = errors.New("registry")                // resolving or fetching from a registry
	ErrBuild         = errors.New("build failed")            // writing archives
	ErrVerify        = errors.New("verification failed")     // archives do not match
	ErrSignature     = errors.New("signature policy")        // an image's signatures do not meet the spec's requirements
)

// Pos is a place in a spec, image list or lockfile.
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

// Positioned is an error that knows where in a file it was found.
type Positioned interface {
	error
	Position() Pos
}

// Error is one problem at a place, of a class.
type Error struct {
	Class error // one of the Err* sentinels
	Pos   Pos
	Msg   string
	Err   error // the cause, if any; Msg already describes it
}

func (e *Error) Error() string {
	if s := e.Pos.String(); s != "" {
		return s + ": " + e.Msg
	}
	return e.Msg
}

// Position implements Positioned.
func (e *Error) Position() Pos { return e.Pos }

// Unwrap makes errors.Is true for the class and for the cause's chain.
func (e *Error) Unwrap() []error {
	var out []error
	if e.Class != nil {
		out = append(out, e.Class)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// Errorf returns an *Error of class at pos. A %w verb in format also becomes
// the error's cause.
func Errorf(class error, pos Pos, format string, args ...any) *Error {
	wrapped := fmt.Errorf(format, args...)
	e := &Error{Class: class, Pos: pos, Msg: wrapped.Error()}
	if u := errors.Unwrap(wrapped); u != nil {
		e.Err = u
	} else if us, ok := wrapped.(interface{ Unwrap() []error }); ok {
		e.Err = errors.Join(us.Unwrap()...)
	}
	return e
}

// PosOf finds the position of err, if anything in its chain has one.
func PosOf(err error) (Pos, bool) {
	var p Positioned
	if errors.As(err, &p) && p.Position().File != "" {
		return p.Position(), true
	}
	return Pos{}, false
}

// List gathers errors into one, sorted by file and line (errors without a
// position keep their order, after those with one), formatted one per line
// with a count so a user sees every problem at once. header names what
// failed ("problems", "images failed"). It returns nil for no errors.
func List(errs []error, header string) error {
	if len(errs) == 0 {
		return nil
	}
	errs = append([]error(nil), errs...)
	sort.SliceStable(errs, func(i, j int) bool {
		a, aok := PosOf(errs[i])
		b, bok := PosOf(errs[j])
		switch {
		case aok != bok:
			return aok
		case a.File != b.File:
			return a.File < b.File
		default:
			return a.Line < b.Line
		}
	})
	return &multierror.Error{Errors: errs, ErrorFormat: ListFormat(header)}
}

// ListFormat prints gathered errors one per line under "N <header>:".
func ListFormat(header string) multierror.ErrorFormatFunc {
	return func(errs []error) string {
		if len(errs) == 1 {
			return errs[0].Error()
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%d %s:", len(errs), header)
		for _, e := range errs {
			b.WriteString("\n  ")
			b.WriteString(strings.ReplaceAll(e.Error(), "\n", "\n    "))
		}
		return b.String()
	}
}
