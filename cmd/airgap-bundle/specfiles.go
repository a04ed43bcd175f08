package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/config"
	"github.com/airgap-bundle/airgap-bundle/lockfile"
)

// loadSpecAndLock reads a spec and its lockfile (at lockPath, or beside the
// spec). A missing lockfile is not an error: lock is nil.
func loadSpecAndLock(ctx context.Context, specPath, lockPath string) (spec *config.Spec, path string, lock *lockfile.Lock, err error) {
	spec, err = config.LoadContext(ctx, specPath)
	if err != nil {
		return nil, "", nil, err
	}
	path = lockPath
	if path == "" {
		path = lockfile.Path(spec.Path)
	}
	lock, err = lockfile.Read(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", nil, err
	}
	return spec, path, lock, nil
}

// openCache opens the blob cache at dir, or at the default place.
func openCache(dir string) (*cache.Cache, error) {
	if dir == "" {
		var err error
		if dir, err = cache.DefaultDir(); err != nil {
			return nil, fmt.Errorf("no cache directory: %w (use --cache-dir)", err)
		}
	}
	return cache.Open(dir)
}
