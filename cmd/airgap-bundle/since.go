package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/airgap-bundle/airgap-bundle/bundler"
	"github.com/airgap-bundle/airgap-bundle/delta"
	"github.com/airgap-bundle/airgap-bundle/internal/inputfile"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// loadSince reads build --since's BASE: "git:REV" (the lockfile at lockPath
// as it was at revision REV of its repository), an inventory file
// (`airgap-bundle inventory` output, JSON), or a lockfile path.
func loadSince(ctx context.Context, since, lockPath string) (*bundler.Since, error) {
	var data []byte
	var err error
	name := since
	if rev, ok := strings.CutPrefix(since, "git:"); ok {
		if rev == "" {
			return nil, usageError{fmt.Errorf("--since git:REV: no revision")}
		}
		data, err = gitShow(ctx, rev, lockPath)
		if err != nil {
			return nil, usageError{fmt.Errorf("--since %s: %w", since, err)}
		}
		name = since + ":" + filepath.Base(lockPath)
	} else {
		data, err = inputfile.Read(ctx, since, inputfile.MaxLockfile)
		if err != nil {
			return nil, usageError{fmt.Errorf("--since: %w", err)}
		}
	}
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		// Parsed from what was read: git:REV names no file to read again.
		inv, err := delta.ParseInventory(data, name)
		if err != nil {
			return nil, usageError{fmt.Errorf("--since: %w", err)}
		}
		return &bundler.Since{Source: since, Have: inv.Have()}, nil
	}
	lock, err := lockfile.Parse(data, name)
	if err != nil {
		return nil, fmt.Errorf("--since: %w", err)
	}
	sum := sha256.Sum256(data)
	return &bundler.Since{Source: since, Lock: lock, LockSHA256: hex.EncodeToString(sum[:])}, nil
}

// gitShow reads the file at path as it was at revision rev of the git
// repository that holds it.
func gitShow(ctx context.Context, rev, path string) ([]byte, error) {
	if strings.HasPrefix(rev, "-") {
		return nil, fmt.Errorf("revision %q: a revision cannot start with -", rev)
	}
	cmd := exec.CommandContext(ctx, "git", "-C", filepath.Dir(path), "show", rev+":./"+filepath.Base(path))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git show %s:%s: %s", rev, filepath.Base(path), strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
