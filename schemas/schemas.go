// Package schemas holds the JSON Schemas (draft 2020-12) of the bundle spec
// (bundle.toml) and of the lockfile (bundle.lock), for editors such as
// VS Code with Even Better TOML (taplo). The CLI can print or ship them.
//
// The schemas describe what a single file must look like. The decoders in
// config and lockfile are the authority: they also check what a schema
// cannot see (image-list files, ca-file, names unique across groups,
// platforms equal after normalisation).
package schemas

import (
	"embed"
	"io/fs"
)

// Names of the schema files in FS, and the $id of each.
const (
	BundleFile    = "bundle.schema.json"
	LockFile      = "lock.schema.json"
	MappingFile   = "mapping.schema.json"
	DeltaFile     = "delta.schema.json"
	InventoryFile = "inventory.schema.json"

	BundleID    = "https://airgap-bundle.dev/schemas/bundle.schema.json"
	LockID      = "https://airgap-bundle.dev/schemas/lock.schema.json"
	MappingID   = "https://airgap-bundle.dev/schemas/mapping.schema.json"
	DeltaID     = "https://airgap-bundle.dev/schemas/delta.schema.json"
	InventoryID = "https://airgap-bundle.dev/schemas/inventory.schema.json"
)

//go:embed *.json
var files embed.FS

// FS holds the schema files, BundleFile and LockFile, at its root.
func FS() fs.FS { return files }

// Bundle returns bundle.schema.json. Each call returns a fresh copy.
func Bundle() []byte { return mustRead(BundleFile) }

// Lock returns lock.schema.json. Each call returns a fresh copy.
func Lock() []byte { return mustRead(LockFile) }

// Mapping returns mapping.schema.json (the file push --mapping writes).
// Each call returns a fresh copy.
func Mapping() []byte { return mustRead(MappingFile) }

// Delta returns delta.schema.json (build --since's delta.json). Each call
// returns a fresh copy.
func Delta() []byte { return mustRead(DeltaFile) }

// Inventory returns inventory.schema.json (airgap-bundle inventory's
// have.json). Each call returns a fresh copy.
func Inventory() []byte { return mustRead(InventoryFile) }

func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic("schemas: " + err.Error()) // embedded at build time: cannot happen
	}
	return b
}
