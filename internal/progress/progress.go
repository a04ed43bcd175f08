// Package progress reports long-running work: bars on a terminal
// (vbauerster/mpb), plain timestamped lines at a modest rate elsewhere (CI
// logs never see redraws or control characters), nothing when quiet.
package progress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Unit says how a task counts.
type Unit int

const (
	Bytes Unit = iota
	Items
)

// Reporter creates tasks and finishes the display.
type Reporter interface {
	Task(name string, total int64, unit Unit) Task
	// Wait flushes the display; call it once, after every task is done.
	Wait()
}

// Task is one piece of work with a known total.
type Task interface {
	Add(n int64)
	// Done marks the task finished, also when it stopped short: err is
	// why (nil when it completed), so the display says "interrupted" or
	// "failed" rather than "done".
	Done(err error)
}

// Mode chooses a Reporter.
type Mode int

const (
	Auto  Mode = iota // bars on a terminal, lines otherwise
	Lines             // always plain lines
	Quiet             // nothing
)

// New returns the Reporter for w.
func New(w io.Writer, mode Mode) Reporter {
	switch {
	case mode == Quiet:
		return nop{}
	case mode == Auto && IsTerminal(w):
		return newBars(w)
	default:
		return NewLines(w, 10*time.Second)
	}
}

// IsTerminal reports whether w is a character device, as a terminal is.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

type nop struct{}

func (nop) Task(string, int64, Unit) Task { return nopTask{} }
func (nop) Wait()                         {}

type nopTask struct{}

// NopTask counts nothing: for work no one is watching.
func NopTask() Task { return nopTask{} }

func (nopTask) Add(int64)  {}
func (nopTask) Done(error) {}

// Also counts into t and into overall too; Done ends t only (overall is a
// total its owner ends).
func Also(t, overall Task) Task { return also{t, overall} }

type also struct{ t, overall Task }

func (a also) Add(n int64) {
	a.t.Add(n)
	a.overall.Add(n)
}

func (a also) Done(err error) { a.t.Done(err) }

// ---- terminal bars

type bars struct{ p *mpb.Progress }

// newBars draws the running tasks as bars. A finished task's bar is
// printed once above them and leaves the redrawn area (PopCompletedMode),
// so that area holds only what runs, however many tasks a run has had: a
// build of 30 groups drew 60 bars, more than a terminal's height.
func newBars(w io.Writer) *bars {
	return &bars{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(32), mpb.WithRefreshRate(150*time.Millisecond), mpb.PopCompletedMode())}
}

func (b *bars) Task(name string, total int64, unit Unit) Task {
	counters := decor.CountersNoUnit("%d / %d", decor.WCSyncWidth)
	speed := decor.Name("")
	if unit == Bytes {
		counters = decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncWidth)
		speed = decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 30, decor.WCSyncWidth)
	}
	t := &barTask{last: time.Now()}
	t.outcome.Store("done")
	t.bar = b.p.AddBar(total,
		mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR), counters),
		mpb.AppendDecorators(
			decor.OnAbortMeta(decor.OnComplete(decor.EwmaETA(decor.ET_STYLE_GO, 30, decor.WCSyncWidth), "done"), func(string) string { return t.outcome.Load().(string) }),
			decor.Name(" "), speed),
	)
	return t
}

func (b *bars) Wait() { b.p.Wait() }

type barTask struct {
	outcome atomic.Value // string: what an aborted bar says
	mu      sync.Mutex
	bar     *mpb.Bar
	last    time.Time
}

func (t *barTask) Add(n int64) {
	t.mu.Lock()
	now := time.Now()
	d := now.Sub(t.last)
	t.last = now
	t.mu.Unlock()
	t.bar.EwmaIncrInt64(n, d)
}

func (t *barTask) Done(err error) {
	if err != nil {
		t.outcome.Store(Outcome(err))
		t.bar.Abort(false)
		return
	}
	// A finished task shows full even when it had less to do than planned.
	t.bar.SetTotal(-1, true)
}

// Outcome is how a task that ended with err is reported: "done",
// "interrupted" (cancelled, timed out) or "failed".
func Outcome(err error) string {
	switch {
	case err == nil:
		return "done"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "interrupted"
	default:
		return "failed"
	}
}

// ---- plain lines

// lines prints one line per task at start, at most one line per interval
// while it runs, and one when it is done.
type lines struct {
	mu       sync.Mutex
	w        io.Writer
	interval time.Duration
	now      func() time.Time
}

// NewLines is the non-terminal Reporter; exported for tests.
func NewLines(w io.Writer, interval time.Duration) Reporter {
	return &lines{w: w, interval: interval, now: time.Now}
}

func (l *lines) Task(name string, total int64, unit Unit) Task {
	t := &lineTask{l: l, name: name, total: total, unit: unit, start: l.now()}
	t.lastPrint = t.start
	l.printf("%s: started, %s", name, t.amount(total))
	return t
}

func (l *lines) Wait() {}

func (l *lines) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s %s\n", l.now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

type lineTask struct {
	l         *lines
	mu        sync.Mutex
	name      string
	total     int64
	unit      Unit
	cur       int64
	start     time.Time
	lastPrint time.Time
	done      bool
}

func (t *lineTask) amount(n int64) string {
	if t.unit == Bytes {
		return HumanBytes(n)
	}
	return fmt.Sprintf("%d", n)
}

func (t *lineTask) Add(n int64) {
	t.mu.Lock()
	t.cur += n
	now := t.l.now()
	if now.Sub(t.lastPrint) < t.l.interval || t.done {
		t.mu.Unlock()
		return
	}
	t.lastPrint = now
	msg := t.status(now)
	t.mu.Unlock()
	t.l.printf("%s", msg)
}

func (t *lineTask) status(now time.Time) string {
	pct := 100.0
	if t.total > 0 {
		pct = float64(t.cur) * 100 / float64(t.total)
	}
	s := fmt.Sprintf("%s: %s / %s (%.0f%%)", t.name, t.amount(t.cur), t.amount(t.total), pct)
	if el := now.Sub(t.start).Seconds(); t.unit == Bytes && el > 0 {
		s += fmt.Sprintf(", %s/s", HumanBytes(int64(float64(t.cur)/el)))
	}
	return s
}

func (t *lineTask) Done(err error) {
	t.mu.Lock()
	if t.done {
		t.mu.Unlock()
		return
	}
	t.done = true
	now := t.l.now()
	amount := t.amount(t.cur)
	if err != nil {
		amount += " of " + t.amount(t.total)
	}
	msg := fmt.Sprintf("%s: %s, %s in %s", t.name, Outcome(err), amount, now.Sub(t.start).Round(time.Millisecond))
	t.mu.Unlock()
	t.l.printf("%s", msg)
}

// HumanBytes renders a size in binary units.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// CountingReader adds what it reads to a task.
type CountingReader struct {
	R    io.Reader
	Task Task
}

func (c CountingReader) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	if n > 0 {
		c.Task.Add(int64(n))
	}
	return n, err
}
