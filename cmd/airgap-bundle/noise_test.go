package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

// --quiet and --verbose reach containers/image, which logs through logrus.
func TestQuietSilencesLibraryLogs(t *testing.T) {
	defer logrus.SetLevel(logrus.GetLevel())
	spec := writeFile(t, t.TempDir(), "bundle.toml", "[[group]]\nname = \"a\"\nimages = [\"busybox\"]\n")
	for _, c := range []struct {
		flags []string
		want  logrus.Level
	}{
		{[]string{"--quiet"}, logrus.ErrorLevel},
		{nil, logrus.WarnLevel},
		{[]string{"--verbose"}, logrus.InfoLevel},
	} {
		logrus.SetLevel(logrus.DebugLevel)
		if out, code := run(t, append(append([]string{"validate"}, c.flags...), spec)...); code != 0 {
			t.Fatalf("validate %v: exit %d\n%s", c.flags, code, out)
		}
		if got := logrus.GetLevel(); got != c.want {
			t.Errorf("validate %v: logrus level %v, want %v", c.flags, got, c.want)
		}
	}
	var buf bytes.Buffer
	logrus.SetOutput(&buf)
	logrus.SetLevel(logrus.ErrorLevel)
	logrus.Warn("trying next host")
	if buf.Len() != 0 {
		t.Errorf("a warning got through at ErrorLevel: %q", buf.String())
	}
}

// containers/image's retry statistics never reach the user.
func TestErrorsLoseHeuristicTuningData(t *testing.T) {
	cause := errors.New("unexpected EOF")
	err := fmt.Errorf("fetching sha256:abc from docker.io/library/busybox: %w",
		fmt.Errorf("(heuristic tuning data: total %d @%.3f ms, last retry %d @%.3f ms, last progress @ %.3f ms): %w", 3, 12.0, 2, 10.0, 9.0, cause))
	var buf bytes.Buffer
	printError(&buf, err)
	got := buf.String()
	if strings.Contains(got, "heuristic") || got != "airgap-bundle: fetching sha256:abc from docker.io/library/busybox: unexpected EOF\n" {
		t.Errorf("printed %q", got)
	}
}
