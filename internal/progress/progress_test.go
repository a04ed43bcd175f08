package progress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Non-terminal output: timestamped lines, no control characters, at most
// one progress line per interval.
func TestLinesAreCIFriendly(t *testing.T) {
	var buf bytes.Buffer
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := NewLines(&buf, 10*time.Second).(*lines)
	r.now = func() time.Time { return clock }
	task := r.Task("download calico", 100<<20, Bytes)
	for i := 0; i < 100; i++ { // 100 MiB over 50 s, in 1 MiB steps
		clock = clock.Add(500 * time.Millisecond)
		task.Add(1 << 20)
	}
	task.Done(nil)
	task.Done(nil) // idempotent
	out := buf.String()
	if strings.ContainsAny(out, "\r\x1b") {
		t.Fatalf("control characters in CI output: %q", out)
	}
	got := strings.Split(strings.TrimSpace(out), "\n")
	// start + one line per 10 s over 50 s + done
	if len(got) != 7 {
		t.Fatalf("%d lines, want 7:\n%s", len(got), out)
	}
	if got[0] != "2026-01-02T03:04:05Z download calico: started, 100.0 MiB" {
		t.Errorf("first line %q", got[0])
	}
	if !strings.Contains(got[1], "download calico: 20.0 MiB / 100.0 MiB (20%), 2.0 MiB/s") {
		t.Errorf("progress line %q", got[1])
	}
	if !strings.HasSuffix(got[6], "download calico: done, 100.0 MiB in 50s") {
		t.Errorf("last line %q", got[6])
	}
}

func TestModes(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, Quiet).Task("x", 1, Items).Add(1)
	if buf.Len() != 0 {
		t.Errorf("quiet wrote %q", buf.String())
	}
	if _, ok := New(&buf, Auto).(*lines); !ok {
		t.Error("a bytes.Buffer is not a terminal: want lines")
	}
}

// A task ended by cancellation or an error says so, never "done".
func TestInterruptedTaskIsNotDone(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{context.Canceled, "download calico: interrupted, 1.0 MiB of 100.0 MiB in "}, // the time taken varies
		{fmt.Errorf("fetching: %w", context.DeadlineExceeded), "download calico: interrupted,"},
		{errors.New("connection reset"), "download calico: failed, 1.0 MiB of 100.0 MiB"},
	} {
		var buf bytes.Buffer
		r := NewLines(&buf, 10*time.Second)
		task := r.Task("download calico", 100<<20, Bytes)
		task.Add(1 << 20)
		task.Done(c.err)
		last := strings.TrimSpace(buf.String())
		last = last[strings.LastIndex(last, "\n")+1:]
		if !strings.Contains(last, c.want) || strings.Contains(last, "done") {
			t.Errorf("%v: last line %q, want %q", c.err, last, c.want)
		}
	}
}
