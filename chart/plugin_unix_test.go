//go:build unix

package chart

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Cancelling the context kills the companion: Render returns at once, and
// the process is gone, not left running.
func TestCancelKillsPlugin(t *testing.T) {
	useFake(t, "hang")
	pidfile := filepath.Join(t.TempDir(), "pid")
	t.Setenv("CHART_TEST_PIDFILE", pidfile)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pidc := make(chan int, 1)
	go func() {
		pid := 0
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if b, err := os.ReadFile(pidfile); err == nil && len(b) > 0 {
				pid, _ = strconv.Atoi(string(b))
				break
			}
		}
		pidc <- pid
		cancel()
	}()
	start := time.Now()
	_, err := Render(ctx, RenderRequest{Chart: "x.tgz", ReleaseName: "r"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("Render returned %v after it began", d)
	}
	pid := <-pidc
	if pid <= 0 {
		t.Fatal("the fake companion never started")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the companion (pid %d) is still there after the cancel: kill -0 says %v", pid, err)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}
