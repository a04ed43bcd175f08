package delta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
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
	return ParseInventory(data, path)
}

// ParseInventory checks an inventory read from path. It is outside input
// (carried across the gap, or edited): unknown fields, trailing data, a
// digest that is not sha256, a negative size or a digest listed twice are
// refused, each naming the file and the entry.
func ParseInventory(data []byte, path string) (*Inventory, error) {
	var inv Inventory
	if err := decodeStrict(data, &inv); err != nil {
		return nil, fmt.Errorf("%s: not an inventory (airgap-bundle inventory writes one): %w", path, err)
	}
	if inv.Version != InventoryVersion {
		return nil, fmt.Errorf("%s: inventory version %d: this airgap-bundle reads version %d (list the site again with this version's airgap-bundle inventory)", path, inv.Version, InventoryVersion)
	}
	if inv.Source == "" {
		return nil, fmt.Errorf("%s: the inventory does not say what it lists (source)", path)
	}
	seen := make(map[digest.Digest]bool, len(inv.Blobs))
	for i, b := range inv.Blobs {
		if b.Digest.Validate() != nil || b.Digest.Algorithm() != digest.SHA256 || b.Size < 0 {
			return nil, fmt.Errorf("%s: blobs[%d]: %q is not a sha256 digest with a size", path, i, b.Digest)
		}
		if seen[b.Digest] {
			return nil, fmt.Errorf("%s: blobs[%d]: %s is listed twice", path, i, b.Digest)
		}
		seen[b.Digest] = true
	}
	return &inv, nil
}

// decodeStrict decodes exactly one JSON value into v: unknown fields and
// anything after the value are errors (a document cut and pasted twice, or
// a second one appended, is not silently half read).
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON document")
	}
	return nil
}

// Encode is the inventory's bytes: blobs sorted by digest, indented, so
// the same holdings give the same file.
func (inv *Inventory) Encode() ([]byte, error) {
	out := *inv
	out.Blobs = slices.Clone(inv.Blobs)
	if out.Blobs == nil {
		out.Blobs = []Blob{}
	}
	slices.SortFunc(out.Blobs, func(a, b Blob) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	b, err := json.MarshalIndent(&out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
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
