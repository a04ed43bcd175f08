package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runFdwatch runs a command and samples the open file descriptors of it
// and its descendants while it runs (issue 20: "open file descriptors
// bounded"). It writes shell assignments to --out:
//
//	FD_PEAK     the most fds one process of the tree had open at a sample
//	FD_TABLE    the largest fd table (FDSize in /proc/PID/status) seen: the
//	            kernel grows a table to fit the highest fd number ever
//	            allocated and never shrinks it, and fds are allocated
//	            lowest first, so it is a high-water mark (a power of two,
//	            at least 64) that a short peak between samples still moves
//	FD_TABLE_START  the table at the first sample: inherited from the
//	            parent, whose open fds size the child's table at fork
//	            (FD_TABLE above it: a peak of more than FD_TABLE_START/2 fds)
//	FD_SAMPLES  how many samples were taken
//	FD_KINDS    what the fds were at the peak: files, sockets, pipes, other
//
// and exits with the command's exit status.
func runFdwatch(args []string) error {
	fs := flag.NewFlagSet("fdwatch", flag.ContinueOnError)
	out := fs.String("out", "", "write FD_PEAK= FD_TABLE= FD_SAMPLES= FD_KINDS= here")
	every := fs.Duration("every", 5*time.Millisecond, "sampling interval")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		return errors.New("usage: benchtool fdwatch --out FILE [--every 5ms] -- CMD [ARG...]")
	}
	cmd := exec.Command(fs.Arg(0), fs.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	// Ctrl-C and kill reach the command; this process waits for it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	w := &fdWatch{}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	var werr error
	for running := true; running; {
		w.sample(cmd.Process.Pid)
		select {
		case werr = <-exited:
			running = false
		case <-tick.C:
		}
	}
	if err := os.WriteFile(*out, []byte(fmt.Sprintf("FD_PEAK=%d FD_TABLE=%d FD_TABLE_START=%d FD_SAMPLES=%d FD_KINDS=%q\n",
		w.peak, w.table, w.start, w.samples, w.kinds)), 0o644); err != nil {
		return err
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		os.Exit(ee.ExitCode())
	}
	return werr
}

type fdWatch struct {
	peak, table, start, samples int
	kinds                       string
}

// sample looks at pid and its descendants once.
func (w *fdWatch) sample(pid int) {
	w.samples++
	for _, p := range tree(pid) {
		dir := fmt.Sprintf("/proc/%d/fd", p)
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue // gone
		}
		t := fdTableSize(p)
		if w.start == 0 {
			w.start = t
		}
		if t > w.table {
			w.table = t
		}
		if len(ents) > w.peak {
			w.peak = len(ents)
			w.kinds = fdKinds(dir, ents)
		}
	}
}

// tree is pid and its descendants, from /proc/PID/task/TID/children.
func tree(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", out[i]))
		for _, t := range tasks {
			b, _ := os.ReadFile(t)
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

func fdTableSize(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "FDSize:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// fdKinds counts the fds of dir by what they point at.
func fdKinds(dir string, ents []os.DirEntry) string {
	count := map[string]int{}
	for _, e := range ents {
		t, err := os.Readlink(filepath.Join(dir, e.Name()))
		switch {
		case err != nil:
			continue
		case strings.HasPrefix(t, "socket:"):
			count["sockets"]++
		case strings.HasPrefix(t, "pipe:"):
			count["pipes"]++
		case strings.HasPrefix(t, "/dev/"):
			count["devices"]++
		case strings.HasPrefix(t, "/"):
			count["files"]++
		default: // anon_inode:[eventpoll], [eventfd], [pidfd]
			count["other"]++
		}
	}
	var ks []string
	for k, n := range count {
		ks = append(ks, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}
