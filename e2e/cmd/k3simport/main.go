// Command k3simport imports an image archive into containerd exactly the way
// k3s's agent does for files dropped into /var/lib/rancher/k3s/agent/images
// (k3s pkg/agent/containerd preloadFile + rancher/wharfie pkg/tarfile):
//
//   - pick the decompressor from the file extension, case-insensitively:
//     .tar, .tar.gz/.tgz (gzip), .tar.zst/.tzst (zstd with a 32 MiB decoder
//     memory cap, wharfie's MaxDecoderMemory), .tar.bz2/.tbz (bzip2);
//   - client.Import(ctx, r, WithAllPlatforms(true), WithSkipMissing()) in the
//     "k8s.io" namespace with the containerd 2.x Go client;
//   - pin the imported images with the k3s and CRI "pinned" labels and add
//     the name@digest tag k3s adds (which fails, as in k3s, for names that
//     are not name:tag).
//
// It prints one "name<TAB>target-digest" line per imported image (as returned
// by Import, before k3s's extra name@digest tags).
//
// With --unpack NAME it then unpacks NAME into the snapshotter (overlayfs by
// default), mounts a read-only view of its rootfs in a temp dir and checks
// --check-present / --check-absent paths, so a test can prove that a
// whiteout-deleted file is really gone.
//
// Exit status: 0 ok, 1 import/unpack error, 2 usage, 3 a check failed,
// 4 k3s's post-import tagging/labelling failed (k3s logs that as an error).
package main

import (
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/image-spec/identity"
)

const (
	// k3s: k3sPinnedImageLabelKey = "io.cattle." + version.Program + ".pinned"
	k3sPinnedImageLabelKey   = "io.cattle.k3s.pinned"
	k3sPinnedImageLabelValue = "pinned"
	// containerd CRI's pinned label
	criPinnedImageLabelKey   = "io.cri-containerd.pinned"
	criPinnedImageLabelValue = "pinned"
	// wharfie tarfile.MaxDecoderMemory
	maxDecoderMemory = uint64(1 << 25)
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	os.Exit(run())
}

func run() int {
	var (
		address     = flag.String("address", "/tmp/airgap-e2e/containerd2/containerd.sock", "containerd socket")
		namespace   = flag.String("namespace", "k8s.io", "containerd namespace (k3s uses k8s.io)")
		archive     = flag.String("archive", "", "image archive (.tar, .tar.gz, .tgz, .tar.zst, .tzst, .tar.bz2, .tbz)")
		clean       = flag.Bool("clean", false, "delete every image in the namespace before importing")
		noK3sTags   = flag.Bool("no-k3s-tags", false, "skip k3s's post-import pin labels and name@digest tags")
		unpack      = flag.String("unpack", "", "after import, unpack this image name into the snapshotter")
		snapshotter = flag.String("snapshotter", "overlayfs", "snapshotter for --unpack")
		platform    = flag.String("platform", "", "platform to unpack (default: this host's)")
		timeout     = flag.Duration("timeout", 5*time.Minute, "overall timeout")
		present     multiFlag
		absent      multiFlag
	)
	flag.Var(&present, "check-present", "path that must exist in the unpacked rootfs (repeatable; needs --unpack)")
	flag.Var(&absent, "check-absent", "path that must NOT exist in the unpacked rootfs (repeatable; needs --unpack)")
	flag.Parse()
	if *archive == "" && flag.NArg() == 1 {
		*archive = flag.Arg(0)
	}
	if *archive == "" && *unpack == "" {
		fmt.Fprintln(os.Stderr, "usage: k3simport --address SOCK [--archive] FILE [--unpack NAME [--check-present P]... [--check-absent P]...]")
		return 2
	}
	if (len(present) > 0 || len(absent) > 0) && *unpack == "" {
		fmt.Fprintln(os.Stderr, "k3simport: --check-present/--check-absent need --unpack NAME")
		return 2
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	ctx = namespaces.WithNamespace(ctx, *namespace)

	cl, err := client.New(*address)
	if err != nil {
		fmt.Fprintf(os.Stderr, "k3simport: connect %s: %v\n", *address, err)
		return 1
	}
	defer cl.Close()

	if *clean {
		if err := deleteAllImages(ctx, cl); err != nil {
			fmt.Fprintf(os.Stderr, "k3simport: clean: %v\n", err)
			return 1
		}
	}

	rc := 0
	if *archive != "" {
		imgs, err := preloadFile(ctx, cl, *archive)
		if err != nil {
			fmt.Fprintf(os.Stderr, "k3simport: import %s: %v\n", *archive, err)
			return 1
		}
		for _, img := range imgs {
			fmt.Printf("%s\t%s\n", img.Name, img.Target.Digest)
		}
		if !*noK3sTags {
			if err := labelImages(ctx, cl, imgs); err != nil {
				fmt.Fprintf(os.Stderr, "k3simport: k3s would log: failed to add pinned label to images: %v\n", err)
				rc = 4
			}
			if err := retagImages(ctx, cl, imgs); err != nil {
				fmt.Fprintf(os.Stderr, "k3simport: k3s would log: failed to retag images: %v\n", err)
				rc = 4
			}
		}
	}

	if *unpack != "" {
		if code := unpackAndCheck(ctx, cl, *unpack, *snapshotter, *platform, present, absent); code != 0 {
			return code
		}
	}
	return rc
}

// hasSuffixI mirrors k3s/wharfie util.HasSuffixI.
func hasSuffixI(s string, suffixes ...string) bool {
	s = strings.ToLower(s)
	for _, suffix := range suffixes {
		if strings.HasSuffix(s, strings.ToLower(suffix)) {
			return true
		}
	}
	return false
}

// openArchive mirrors wharfie's tarfile.GetOpener (the opener k3s's preloadFile uses).
func openArchive(fileName string) (io.ReadCloser, error) {
	var closers []func() error
	file, err := os.Open(fileName)
	if err != nil {
		return nil, err
	}
	closers = append(closers, file.Close)
	var r io.Reader
	switch {
	case hasSuffixI(fileName, ".tar"):
		r = file
	case hasSuffixI(fileName, ".tar.bz2", ".tbz"):
		r = bzip2.NewReader(file)
	case hasSuffixI(fileName, ".tar.gz", ".tgz"):
		zr, err := gzip.NewReader(file)
		if err != nil {
			file.Close()
			return nil, err
		}
		closers = append([]func() error{zr.Close}, closers...)
		r = zr
	case hasSuffixI(fileName, "tar.zst", ".tzst"): // sic: no leading dot, as in wharfie
		zr, err := zstd.NewReader(file, zstd.WithDecoderMaxMemory(maxDecoderMemory))
		if err != nil {
			file.Close()
			return nil, err
		}
		closers = append([]func() error{func() error { zr.Close(); return nil }}, closers...)
		r = zr
	default:
		file.Close()
		return nil, fmt.Errorf("unhandled file type; supported extensions: .tar .tar.bz2 .tbz .tar.gz .tgz .tar.zst .tzst (.tar.lz4 is not mirrored here)")
	}
	return readCloser{r, closers}, nil
}

type readCloser struct {
	io.Reader
	closers []func() error
}

func (rc readCloser) Close() error {
	var errs []error
	for _, c := range rc.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

func preloadFile(ctx context.Context, cl *client.Client, filePath string) ([]images.Image, error) {
	imageReader, err := openArchive(filePath)
	if err != nil {
		return nil, err
	}
	defer imageReader.Close()
	return cl.Import(ctx, imageReader, client.WithAllPlatforms(true), client.WithSkipMissing())
}

func labelImages(ctx context.Context, cl *client.Client, imgs []images.Image) error {
	var errs []error
	is := cl.ImageService()
	for i, image := range imgs {
		if image.Labels[k3sPinnedImageLabelKey] == k3sPinnedImageLabelValue &&
			image.Labels[criPinnedImageLabelKey] == criPinnedImageLabelValue {
			continue
		}
		if image.Labels == nil {
			image.Labels = map[string]string{}
		}
		image.Labels[k3sPinnedImageLabelKey] = k3sPinnedImageLabelValue
		image.Labels[criPinnedImageLabelKey] = criPinnedImageLabelValue
		updated, err := is.Update(ctx, image, "labels")
		if err != nil {
			errs = append(errs, fmt.Errorf("failed to add labels to image %s: %w", image.Name, err))
			continue
		}
		imgs[i] = updated
	}
	return errors.Join(errs...)
}

// retagImages: k3s tags every imported image as name@digest (plus extra
// airgap registries, none here); names that are not name:tag are an error.
func retagImages(ctx context.Context, cl *client.Client, imgs []images.Image) error {
	var errs []error
	is := cl.ImageService()
	for _, image := range imgs {
		ref, err := reference.ParseNormalizedNamed(image.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("failed to parse tag for image %s: %w", image.Name, err))
			continue
		}
		if _, ok := ref.(reference.NamedTagged); !ok {
			errs = append(errs, fmt.Errorf("failed to parse tag for image %s: can't cast %T to NamedTagged", image.Name, ref))
			continue
		}
		newName := fmt.Sprintf("%s@%s", ref.Name(), image.Target.Digest)
		if newName == image.Name {
			continue
		}
		image.Name = newName
		if _, err := is.Create(ctx, image); err != nil {
			if !errdefs.IsAlreadyExists(err) {
				errs = append(errs, fmt.Errorf("failed to tag image %s: %w", newName, err))
				continue
			}
			if err := is.Delete(ctx, newName); err != nil {
				errs = append(errs, fmt.Errorf("failed to delete existing image %s: %w", newName, err))
				continue
			}
			if _, err := is.Create(ctx, image); err != nil {
				errs = append(errs, fmt.Errorf("failed to tag after deleting existing image %s: %w", newName, err))
			}
		}
	}
	return errors.Join(errs...)
}

func deleteAllImages(ctx context.Context, cl *client.Client) error {
	is := cl.ImageService()
	imgs, err := is.List(ctx)
	if err != nil {
		return err
	}
	for i, img := range imgs {
		var opts []images.DeleteOpt
		if i == len(imgs)-1 {
			opts = append(opts, images.SynchronousDelete()) // GC once, at the end
		}
		if err := is.Delete(ctx, img.Name, opts...); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete %s: %w", img.Name, err)
		}
	}
	return nil
}

func unpackAndCheck(ctx context.Context, cl *client.Client, name, snapshotter, platform string, present, absent []string) int {
	stored, err := cl.ImageService().Get(ctx, name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "k3simport: unpack: %v\n", err)
		return 1
	}
	pm := platforms.Default()
	if platform != "" {
		p, err := platforms.Parse(platform)
		if err != nil {
			fmt.Fprintf(os.Stderr, "k3simport: --platform: %v\n", err)
			return 2
		}
		pm = platforms.Only(p)
	}
	img := client.NewImageWithPlatform(cl, stored, pm)
	if err := img.Unpack(ctx, snapshotter); err != nil {
		fmt.Fprintf(os.Stderr, "k3simport: unpack %s into %s: %v\n", name, snapshotter, err)
		return 1
	}
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "k3simport: rootfs of %s: %v\n", name, err)
		return 1
	}
	chainID := identity.ChainID(diffIDs).String()
	fmt.Fprintf(os.Stderr, "k3simport: unpacked %s (%d layers, chain %s)\n", name, len(diffIDs), chainID)
	if len(present) == 0 && len(absent) == 0 {
		return 0
	}

	sn := cl.SnapshotService(snapshotter)
	key := fmt.Sprintf("k3simport-view-%d-%d", os.Getpid(), time.Now().UnixNano())
	mounts, err := sn.View(ctx, key, chainID)
	if err != nil {
		fmt.Fprintf(os.Stderr, "k3simport: view snapshot %s: %v\n", chainID, err)
		return 1
	}
	defer sn.Remove(context.WithoutCancel(ctx), key)

	var failed []string
	err = mount.WithTempMount(ctx, mounts, func(root string) error {
		for _, p := range present {
			if _, err := os.Lstat(filepath.Join(root, filepath.Clean("/"+p))); err != nil {
				failed = append(failed, fmt.Sprintf("expected present, but: %v", trimRoot(err, root)))
			} else {
				fmt.Fprintf(os.Stderr, "k3simport: present: %s\n", p)
			}
		}
		for _, p := range absent {
			fi, err := os.Lstat(filepath.Join(root, filepath.Clean("/"+p)))
			switch {
			case err == nil:
				failed = append(failed, fmt.Sprintf("expected absent, but %s exists (mode %v)", p, fi.Mode()))
			case errors.Is(err, os.ErrNotExist):
				fmt.Fprintf(os.Stderr, "k3simport: absent: %s\n", p)
			default:
				failed = append(failed, fmt.Sprintf("checking %s: %v", p, trimRoot(err, root)))
			}
		}
		return nil
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "k3simport: mount view: %v\n", err)
		return 1
	}
	if len(failed) > 0 {
		for _, f := range failed {
			fmt.Fprintf(os.Stderr, "k3simport: CHECK FAILED: %s\n", f)
		}
		return 3
	}
	return 0
}

func trimRoot(err error, root string) string {
	return strings.ReplaceAll(err.Error(), root, "<rootfs>")
}
