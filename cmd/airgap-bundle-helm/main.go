// Command airgap-bundle-helm is the Helm half of airgap-bundle: it renders
// and packages charts with the Helm SDK for the main binary, which runs it
// as a subprocess (package chart). The SDK would make airgap-bundle 3.4
// times bigger, and most sites bundle no charts, so it lives here instead.
//
// It never contacts a cluster or the network: rendering is `helm template`'s
// client-only dry run, with capabilities taken from the request.
//
// # Protocol
//
// One JSON request on stdin, one JSON response on stdout, then exit.
//
//	{"protocol":1,"op":"render","render":{"chart":"/abs/c-1.0.0.tgz",
//	  "valuesFiles":["/abs/a.yaml"],"set":{"image":{"tag":"x"}},
//	  "releaseName":"r","namespace":"ns","kubeVersion":"1.30.0",
//	  "apiVersions":["monitoring.coreos.com/v1"]}}
//	{"protocol":1,"op":"package","package":{"dir":"/abs/chart","out":"/abs/c.tgz"}}
//	{"protocol":1,"op":"version"}
//
// The response carries the same protocol number and one of "render"
// ({"name","version","appVersion","manifests":[{"template","content"}]}),
// "package" ({"name","version"}), "version" ({"helm","go","module"}) or
// "error" ({"kind","template","message"}). The error kinds are "render"
// (Helm failed to render or validate; template is set when Helm named
// one), "dependencies" (Chart.yaml names a chart charts/ lacks), "protocol"
// (the request's protocol number is not this program's) and "request"
// (anything else: a bad request, an unreadable chart or values file).
//
// Exit status: 0 whenever a response was written, an error response
// included, so the caller reads every outcome from stdout alone; 1 when
// not even a response could be written (stdout closed). A crash exits 2
// with Go's panic on stderr, which the caller reports.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/airgap-bundle/airgap-bundle/chart/wire"
)

// The protocol's types are package wire's, shared with package chart.
const protocol = wire.Protocol

// Stdin is the request alone; anything near this size is not one.
const maxRequest = 16 << 20

type (
	request         = wire.Request
	renderRequest   = wire.Render
	packageRequest  = wire.Package
	response        = wire.Response
	renderResponse  = wire.Rendered
	manifest        = wire.Manifest
	packageResponse = wire.Packaged
	versionResponse = wire.Version
	// opError is the error response; it is also the error the ops
	// return, so the kind chosen where the failure is understood reaches
	// the caller.
	opError = wire.Error
)

func errorf(kind, format string, args ...any) *opError {
	return &opError{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

func main() {
	// Helm logs through slog and log; stdout is the protocol's, so both go
	// to stderr, which the caller keeps for its messages. Helm's Info lines
	// (e.g. every skipped unknown hook) would only be noise there.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	resp := serve(os.Stdin)
	if err := json.NewEncoder(os.Stdout).Encode(resp); err != nil {
		fmt.Fprintln(os.Stderr, "airgap-bundle-helm: writing the response:", err)
		os.Exit(1)
	}
}

func serve(in io.Reader) *response {
	resp := &response{Protocol: protocol}
	data, err := io.ReadAll(io.LimitReader(in, maxRequest+1))
	if err != nil {
		resp.Error = errorf("request", "reading the request: %v", err)
		return resp
	}
	if len(data) > maxRequest {
		resp.Error = errorf("request", "the request is over %d bytes", maxRequest)
		return resp
	}
	var req request
	if err := json.Unmarshal(data, &req); err != nil {
		resp.Error = errorf("request", "the request is not JSON this program reads: %v", err)
		return resp
	}
	if req.Protocol != protocol {
		resp.Error = errorf("protocol", "the request speaks protocol %d, this airgap-bundle-helm speaks protocol %d", req.Protocol, protocol)
		return resp
	}
	var opErr error
	switch req.Op {
	case "render":
		if req.Render == nil {
			opErr = errorf("request", `op "render" without "render"`)
			break
		}
		resp.Render, opErr = render(req.Render)
	case "package":
		if req.Package == nil {
			opErr = errorf("request", `op "package" without "package"`)
			break
		}
		resp.Package, opErr = packageChart(req.Package)
	case "version":
		resp.Version = version()
	default:
		opErr = errorf("request", "unknown op %q (this airgap-bundle-helm does render, package and version)", req.Op)
	}
	if opErr != nil {
		resp.Render, resp.Package = nil, nil
		var oe *opError
		if !errors.As(opErr, &oe) {
			oe = &opError{Kind: "request", Message: opErr.Error()}
		}
		resp.Error = oe
	}
	return resp
}

func version() *versionResponse {
	v := &versionResponse{Helm: "unknown", Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v.Module = bi.Main.Version
		for _, d := range bi.Deps {
			if d.Path == "helm.sh/helm/v4" {
				v.Helm = d.Version
				if d.Replace != nil {
					v.Helm = d.Replace.Version
				}
			}
		}
	}
	return v
}
