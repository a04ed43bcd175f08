package config

import (
	"fmt"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
)

// errorList gathers a spec's problems in the order they are found; err
// reports them sorted by file and line, each of class errdefs.ErrSpec.
type errorList struct{ errs []error }

func (l *errorList) add(pos errdefs.Pos, format string, args ...any) {
	l.errs = append(l.errs, &errdefs.Error{Class: errdefs.ErrSpec, Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (l *errorList) count() int { return len(l.errs) }

func (l *errorList) err() error { return errdefs.List(l.errs, "problems") }
