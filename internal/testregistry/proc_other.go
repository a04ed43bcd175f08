//go:build !linux

package testregistry

import "os/exec"

func setProcAttrs(cmd *exec.Cmd) {}
