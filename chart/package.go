package chart

import (
	"context"
	"errors"
	"path/filepath"
)

// Package packages the chart directory dir into a .tgz at outPath, as
// helm package would (.helmignore honoured, subcharts vendored in
// charts/, as directories or .tgz, written out under NAME/charts/SUB/,
// every path under NAME/), but reproducibly: the same directory contents
// give the same bytes every time and everywhere, so the archive's digest
// can be pinned. Entries are sorted, all dated 1980-01-01 with mode 0644
// and owner 0:0, with no directory entries, and the gzip header carries
// neither name nor time. A dependency in Chart.yaml that is not vendored
// is an error saying to run helm dependency build. outPath is replaced
// whole or not at all (written aside, then renamed). It returns the
// chart's name and version.
func Package(ctx context.Context, dir, outPath string) (name, version string, err error) {
	if dir == "" || outPath == "" {
		return "", "", errors.New("package: a chart directory and an output path are needed")
	}
	wire := &wirePackage{}
	if wire.Dir, err = filepath.Abs(dir); err != nil {
		return "", "", err
	}
	if wire.Out, err = filepath.Abs(outPath); err != nil {
		return "", "", err
	}
	resp, err := call(ctx, &wireRequest{Op: "package", Package: wire})
	if err != nil {
		return "", "", err
	}
	if resp.Package == nil {
		return "", "", errors.New(`airgap-bundle-helm answered the package with no "package"`)
	}
	return resp.Package.Name, resp.Package.Version, nil
}
