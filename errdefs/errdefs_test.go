package errdefs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestList(t *testing.T) {
	foreign := errors.New("no position")
	errs := []error{
		&Error{Class: ErrSpec, Pos: Pos{File: "b.toml", Line: 1}, Msg: "third"},
		foreign,
		&Error{Class: ErrSpec, Pos: Pos{File: "a.toml", Line: 9}, Msg: "second"},
		fmt.Errorf("wrapped: %w", &Error{Class: ErrSpec, Pos: Pos{File: "a.toml", Line: 2}, Msg: "first"}),
	}
	err := List(errs, "problems")
	want := "4 problems:\n  wrapped: a.toml:2: first\n  a.toml:9: second\n  b.toml:1: third\n  no position"
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
	if !errors.Is(err, ErrSpec) || !errors.Is(err, foreign) {
		t.Error("gathered errors lose their classes")
	}
	if List(nil, "problems") != nil {
		t.Error("no errors gave an error")
	}
	if one := List([]error{foreign}, "problems"); one.Error() != "no position" {
		t.Errorf("one error: %q", one)
	}
}

func TestErrorClassAndCause(t *testing.T) {
	cases := []struct {
		err       error
		is        []error
		isNot     []error
		wantText  string
		wantPlace bool
	}{
		{Errorf(ErrLockfile, Pos{File: "bundle.lock", Line: 3}, "bad digest"), []error{ErrLockfile}, []error{ErrSpec}, "bundle.lock:3: bad digest", true},
		{Errorf(ErrBuild, Pos{}, "group %q: %w", "core", context.Canceled), []error{ErrBuild, context.Canceled}, []error{ErrSpec}, `group "core": context canceled`, false},
		{Errorf(ErrUsage, Pos{}, "%w and %w", context.Canceled, context.DeadlineExceeded), []error{ErrUsage, context.Canceled, context.DeadlineExceeded}, nil, "context canceled and context deadline exceeded", false},
	}
	for _, c := range cases {
		for _, target := range c.is {
			if !errors.Is(c.err, target) {
				t.Errorf("%v: not %v", c.err, target)
			}
		}
		for _, target := range c.isNot {
			if errors.Is(c.err, target) {
				t.Errorf("%v: is %v", c.err, target)
			}
		}
		if c.err.Error() != c.wantText {
			t.Errorf("text %q, want %q", c.err, c.wantText)
		}
		if _, ok := PosOf(c.err); ok != c.wantPlace {
			t.Errorf("%v: PosOf ok = %v", c.err, ok)
		}
	}
	if !strings.Contains(Pos{File: "f", Line: 1, Col: 2}.String(), "f:1:2") {
		t.Error("column not shown")
	}
}
