package delta

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/airgap-bundle/airgap-bundle/internal/inputfile"
)

// InventoryVersion is the inventory format this code reads and writes.
const InventoryVersion = 1

// Inventory is what a site holds, as `airgap-bundle inventory` lists it
// (have.json): the blobs of its archives or its registry. build --since
// have.json leaves exactly those out of its deltas.
type Inventory struct {
	Version int `json:"version"`
	// Source is what was listed: a directory of archives, or a registry.
	Source string `json:"source"`
	Blobs  []Blob `json:"blobs"`
}

// ReadInventory reads and checks an inventory file.
func ReadInventory(ctx context.Context, path string) (*Inventory, error) {
	data, err := inputfile.Read(ctx, path, inputfile.MaxLockfile)
	if err != nil {
		return nil, err
	}
	var inv Inventory
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&inv); err != nil {
		return nil, fmt.Errorf("%s: not an inventory: %w", path, err)
	}
	if inv.Version != InventoryVersion {
		return nil, fmt.Errorf("%s: inventory version %d: this airgap-bundle reads version %d", path, inv.Version, InventoryVersion)
	}
	for i, b := range inv.Blobs {
		if b.Digest.Validate() != nil || b.Digest.Algorithm() != digest.SHA256 || b.Size < 0 {
			return nil, fmt.Errorf("%s: blobs[%d]: %q is not a sha256 digest with a size", path, i, b.Digest)
		}
	}
	return &inv, nil
}

// Have is the inventory as build --since takes it: digest to where.
func (inv *Inventory) Have() map[digest.Digest]string {
	out := make(map[digest.Digest]string, len(inv.Blobs))
	for _, b := range inv.Blobs {
		where := b.Where
		if where == "" {
			where = inv.Source
		}
		out[b.Digest] = where
	}
	return out
}
