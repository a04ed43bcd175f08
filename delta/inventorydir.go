package delta

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/archive"
	"github.com/airgap-bundle/airgap-bundle/internal/logs"
)

// DirOptions tune InventoryDir.
type DirOptions struct {
	// Hash reads and hashes every blob of an uncompressed .tar too, and
	// leaves out those whose bytes do not match their names. Without it a
	// .tar is listed by its tar headers alone (see InventoryDir).
	Hash   bool
	Logger *slog.Logger
}

// ArchiveListing is what InventoryDir found in one archive.
type ArchiveListing struct {
	Path string `json:"path"`
	// Blobs and Bytes count the blobs listed from this archive (a blob
	// two archives hold is listed from the first, in name order).
	Blobs int   `json:"blobs"`
	Bytes int64 `json:"bytes"`
	// Hashed says every blob's bytes were hashed (a compressed archive,
	// or DirOptions.Hash); else the tar headers were trusted.
	Hashed bool `json:"hashed"`
	// Damaged are the blobs whose bytes do not hash to their names: not
	// listed, so a delta carries them again.
	Damaged []digest.Digest `json:"damaged,omitempty"`
	// NoBlobs says the archive has no blobs/ directory (a Docker archive
	// without an OCI layout): apply reads BASE's blobs only from blobs/,
	// so none of its layers can be left out of a delta.
	NoBlobs bool `json:"no-blobs,omitempty"`
}

// InventoryDir lists the blobs of every archive in dir (or of the one
// archive dir names), where each is the archive's file name.
//
// Trust: a compressed archive has to be read whole to be read at all, so
// its blobs are hashed on the way and a damaged one is left out. An
// uncompressed .tar is, by default, listed by its tar headers alone
// (archive.TarBlobs): a site's .tar archives can be tens of gigabytes, and
// the inventory is only a claim that apply checks: apply hashes every BASE
// blob it copies and names a damaged one with its archive before anything
// is committed. A damaged blob listed here costs a failed apply and a new
// delta, never a wrong archive. DirOptions.Hash trades the time of reading
// every byte for an inventory that leaves damaged blobs out up front.
func InventoryDir(ctx context.Context, dir string, opts DirOptions) (*Inventory, []ArchiveListing, error) {
	log := logs.OrDiscard(opts.Logger)
	paths, err := archive.Files([]string{dir})
	if err != nil {
		return nil, nil, err
	}
	source := "directory " + dir
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		source = "archive " + dir
	}
	inv := &Inventory{Version: InventoryVersion, Source: source, Blobs: []Blob{}}
	listed := map[digest.Digest]bool{}
	var out []ArchiveListing
	for _, p := range paths {
		l := ArchiveListing{Path: p}
		name := filepath.Base(p)
		add := func(d digest.Digest, size int64) {
			if listed[d] {
				return
			}
			listed[d] = true
			inv.Blobs = append(inv.Blobs, Blob{Digest: d, Size: size, Where: name})
			l.Blobs++
			l.Bytes += size
		}
		if err := listArchive(ctx, p, opts.Hash, &l, add); err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			return nil, nil, fmt.Errorf("archive %s: %w (repair it, or move it aside, and list again)", p, err)
		}
		for _, d := range l.Damaged {
			log.Warn("blob does not match its name: left out of the inventory, so a delta carries it again", "archive", p, "blob", d)
		}
		if l.NoBlobs {
			log.Warn("archive has no blobs/ directory (a Docker archive without an OCI layout): apply cannot take layers from it, so none is listed", "archive", p)
		}
		log.Info("listed archive", "archive", p, "blobs", l.Blobs, "bytes", l.Bytes, "hashed", l.Hashed)
		out = append(out, l)
	}
	return inv, out, nil
}

// listArchive lists one archive's sha256 blobs through add.
func listArchive(ctx context.Context, p string, hash bool, l *ArchiveListing, add func(digest.Digest, int64)) error {
	comp, err := archive.CompressionFor(p)
	if err != nil {
		return err
	}
	if comp == archive.None && !hash {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		l.NoBlobs = true
		return archive.TarBlobs(ctx, f, func(b archive.TarBlob) error {
			l.NoBlobs = false
			add(b.Digest, b.Size)
			return nil
		})
	}
	// Read streams the archive once, decompressing and hashing every
	// file: no temporary copy, memory bounded by its document limits.
	c, err := archive.ReadFile(ctx, p, archive.ReadOptions{})
	if err != nil {
		return err
	}
	l.Hashed = true
	l.NoBlobs = len(c.Blobs) == 0
	ds := make([]digest.Digest, 0, len(c.Blobs))
	for d := range c.Blobs {
		ds = append(ds, d)
	}
	slices.Sort(ds)
	for _, d := range ds {
		b := c.Blobs[d]
		switch {
		case d.Algorithm() != digest.SHA256:
			// apply and inventories speak sha256 only.
		case b.ComputedDigest != d:
			l.Damaged = append(l.Damaged, d)
		default:
			add(d, b.Size)
		}
	}
	return nil
}
