package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// stuckEnv makes the re-executed CLI run stuckRootCmd: a command that
// ignores its context, as a run stuck in a loop or a system call would.
const stuckEnv = "AIRGAP_BUNDLE_TEST_STUCK"

func stuckRootCmd() *cobra.Command {
	return &cobra.Command{
		Use:           "airgap-bundle",
		SilenceErrors: true,
		RunE: func(c *cobra.Command, _ []string) error {
			fmt.Fprintln(c.ErrOrStderr(), "stuck")
			select {}
		},
	}
}

// A command that does not stop on cancellation exits at the second signal
// with the first one's code.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	for _, c := range []struct {
		sig  syscall.Signal
		want int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(cliBinary(t))
		cmd.Env = cliEnv(stuckEnv + "=1")
		cmd.Stderr = w
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		r.SetReadDeadline(time.Now().Add(30 * time.Second)) //nolint:errcheck // a pipe supports deadlines
		br := bufio.NewReader(r)
		if line, err := br.ReadString('\n'); err != nil || line != "stuck\n" {
			t.Fatalf("first line %q, %v", line, err)
		}
		if err := cmd.Process.Signal(c.sig); err != nil {
			t.Fatal(err)
		}
		if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, "stopping") {
			cmd.Process.Kill() //nolint:errcheck
			t.Fatalf("after the first signal: %q, %v", line, err)
		}
		if err := cmd.Process.Signal(c.sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != c.want {
				t.Errorf("%v twice: %v, want exit %d", c.sig, err, c.want)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill() //nolint:errcheck
			t.Fatalf("%v twice: still running after 10s", c.sig)
		}
		r.Close()
	}
}

// A run stuck on a registry that never answers stops on SIGINT with exit
// 130 and on SIGTERM with 143, as shells expect; a second signal is not
// needed but must not hurt.
func TestSignalsStopARunWithShellExitCodes(t *testing.T) {
	cases := []struct {
		name string
		sigs []syscall.Signal
		want int
	}{
		{"SIGINT", []syscall.Signal{syscall.SIGINT}, 130},
		{"SIGTERM", []syscall.Signal{syscall.SIGTERM}, 143},
		{"SIGINT twice", []syscall.Signal{syscall.SIGINT, syscall.SIGINT}, 130},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			accepted := make(chan net.Conn, 16)
			go func() {
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					accepted <- conn // hold it open, never answer
				}
			}()
			host := ln.Addr().String()
			dir := t.TempDir()
			spec := writeFile(t, dir, "bundle.toml", fmt.Sprintf("[registries.%q]\ninsecure = true\n\n[[group]]\nname = \"a\"\nimages = [\"%s/x:1\"]\n", host, host))
			var stderr bytes.Buffer
			cmd := exec.Command(cliBinary(t), "lock", spec)
			cmd.Env = cliEnv("HOME="+dir, "DOCKER_CONFIG="+filepath.Join(dir, ".docker"), "REGISTRY_AUTH_FILE=", "XDG_RUNTIME_DIR=")
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill() //nolint:errcheck // already gone when the test passes
			select {
			case conn := <-accepted:
				defer conn.Close()
			case <-time.After(60 * time.Second):
				t.Fatalf("lock never connected to the registry\n%s", stderr.String())
			}
			for _, s := range c.sigs {
				if err := cmd.Process.Signal(s); err != nil {
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				var ee *exec.ExitError
				code := 0
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				}
				if code != c.want {
					t.Errorf("exit code %d (%v), want %d\n%s", code, err, c.want, stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("still running 10s after %v\n%s", c.sigs, stderr.String())
			}
		})
	}
}
