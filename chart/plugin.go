package chart

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/airgap-bundle/airgap-bundle/chart/wire"
)

const (
	pluginName = "airgap-bundle-helm"
	// pluginEnv names the companion's path, over any other place.
	pluginEnv = "AIRGAP_BUNDLE_HELM"
	// pluginProtocol is the request/response format spoken with
	// airgap-bundle-helm (package wire).
	pluginProtocol = wire.Protocol
	// pluginModule is what go install takes to build the companion.
	pluginModule = "github.com/airgap-bundle/airgap-bundle/cmd/airgap-bundle-helm"
)

// Bounds on what is read from the companion: a chart's rendered manifests
// run to megabytes, not hundreds of them; stderr is only for messages.
// Variables so tests can make them small.
var (
	maxPluginStdout = int64(256 << 20)
	maxPluginStderr = 64 << 10
)

// airgapVersion is the airgap-bundle version the install hint names, set
// at link time with -X github.com/airgap-bundle/airgap-bundle/chart.airgapVersion=v1.2.3;
// without it, the module version go install records.
var airgapVersion = ""

// ErrNoPlugin is airgap-bundle-helm not being found. The error Render and
// Package return wraps it and says where it was looked for and how to get
// it.
var ErrNoPlugin = errors.New(pluginName + " (the program that renders Helm charts for airgap-bundle) was not found")

// installHint says how to get the companion of the same version.
func installHint() string {
	v := airgapVersion
	if v == "" || v == "dev" {
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	install := "go install " + pluginModule + "@" + v
	if v == "" || v == "dev" {
		install = "go install " + pluginModule + "@VERSION, VERSION being the one `airgap-bundle version` prints" +
			" (from a source checkout: go build -o DIR/" + pluginName + " ./cmd/" + pluginName + ", DIR being airgap-bundle's directory)"
	}
	return install + "; or put the " + pluginName + " binary beside airgap-bundle (release archives ship both);" +
		" or set " + pluginEnv + "=/path/to/" + pluginName
}

func exeName() string {
	if runtime.GOOS == "windows" {
		return pluginName + ".exe"
	}
	return pluginName
}

// findPlugin looks where installHint tells people to put the companion:
// $AIRGAP_BUNDLE_HELM (and nowhere else when it is set, so a wrong value
// is reported rather than another binary used), beside the running
// executable, then on $PATH.
func findPlugin() (string, error) {
	if p := os.Getenv(pluginEnv); p != "" {
		abs, err := filepath.Abs(p)
		if err == nil {
			err = checkExecutable(abs)
		}
		if err != nil {
			return "", fmt.Errorf("%w: %s=%s: %v; to get it: %s", ErrNoPlugin, pluginEnv, p, err, installHint())
		}
		return abs, nil
	}
	var looked []string
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), exeName())
		if checkExecutable(p) == nil {
			return p, nil
		}
		looked = append(looked, p)
	}
	// LookPath refuses a match in a relative $PATH entry (exec.ErrDot),
	// and so does this.
	if p, err := exec.LookPath(exeName()); err == nil {
		return p, nil
	}
	looked = append(looked, "$PATH")
	return "", fmt.Errorf("%w (%s is unset; looked at %s); to get it: %s", ErrNoPlugin, pluginEnv, strings.Join(looked, " and "), installHint())
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return errors.New("not a file")
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not executable")
	}
	return nil
}

// The wire format, shared with cmd/airgap-bundle-helm (package wire).
type (
	wireRequest  = wire.Request
	wireRender   = wire.Render
	wirePackage  = wire.Package
	wireResponse = wire.Response
)

// call runs the companion once with req and returns its answer, or an
// error made from its error answer or from its failing to give one.
func call(ctx context.Context, req *wireRequest) (*wireResponse, error) {
	path, err := findPlugin()
	if err != nil {
		return nil, err
	}
	req.Protocol = pluginProtocol
	in, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding the request to %s: %w", pluginName, err)
	}
	stdout := &cappedBuffer{max: maxPluginStdout}
	stderr := &headBuffer{max: maxPluginStderr}
	cmd := exec.CommandContext(ctx, path)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	// Once the child is killed, a grandchild still holding its stdout
	// must not keep Wait, and so the caller, waiting.
	cmd.WaitDelay = 2 * time.Second
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s %s: %w", pluginName, req.Op, context.Cause(ctx))
	}
	if stdout.over {
		return nil, fmt.Errorf("%s %s: its answer is over %d bytes, more than airgap-bundle reads", path, req.Op, maxPluginStdout)
	}
	var resp wireResponse
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		why := err
		if runErr != nil {
			why = runErr
		}
		return nil, fmt.Errorf("%s %s gave no answer airgap-bundle reads: %v%s", path, req.Op, why, stderr.text())
	}
	if resp.Protocol != pluginProtocol {
		return nil, fmt.Errorf("%s speaks protocol %d, this airgap-bundle speaks protocol %d: the two must be of one version; to get the matching one: %s",
			path, resp.Protocol, pluginProtocol, installHint())
	}
	if e := resp.Error; e != nil {
		switch e.Kind {
		case "render":
			return nil, &RenderError{Template: e.Template, Message: e.Message}
		default:
			return nil, fmt.Errorf("%s %s: %s", pluginName, req.Op, e.Message)
		}
	}
	if runErr != nil {
		return nil, fmt.Errorf("%s %s: %v%s", path, req.Op, runErr, stderr.text())
	}
	return &resp, nil
}

// cappedBuffer keeps up to max bytes; past that it fails the write, which
// stops os/exec's copying and so the child, at its next write, on a
// closed pipe. Not an embedded bytes.Buffer: io.Copy would use its
// ReadFrom and never call Write.
type cappedBuffer struct {
	buf  bytes.Buffer
	max  int64
	over bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if int64(b.buf.Len())+int64(len(p)) > b.max {
		b.over = true
		return 0, errors.New("answer too long")
	}
	return b.buf.Write(p)
}

func (b *cappedBuffer) Bytes() []byte { return b.buf.Bytes() }

// headBuffer keeps the first max bytes and takes the rest without keeping
// it, so a chatty child is never blocked or killed for its stderr. The
// head, not the tail: a Go panic's message comes first.
type headBuffer struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (b *headBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room < len(p) {
		b.buf.Write(p[:max(room, 0)])
		b.truncated = true
		return len(p), nil
	}
	return b.buf.Write(p)
}

// text is the kept stderr as the end of an error message, or "".
func (b *headBuffer) text() string {
	s := strings.TrimSpace(b.buf.String())
	if s == "" {
		return ""
	}
	if b.truncated {
		s += "\n[stderr cut at " + fmt.Sprint(b.max) + " bytes]"
	}
	return "\nits stderr:\n" + s
}

// pluginVersion asks the companion for the Helm SDK it was built with.
func pluginVersion(ctx context.Context) (helm string, err error) {
	resp, err := call(ctx, &wireRequest{Op: "version"})
	if err != nil {
		return "", err
	}
	if resp.Version == nil {
		return "", fmt.Errorf(`%s answered "version" with no version`, pluginName)
	}
	return resp.Version.Helm, nil
}
