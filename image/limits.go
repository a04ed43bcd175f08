package image

// MaxManifestSize bounds a manifest or index read into memory, whether from
// a registry or from the cache. Real manifests are a few KiB and large
// indexes some hundreds; more than this means a broken or hostile source,
// which must not make us allocate without bound. 4 MiB is the size the OCI
// distribution spec asks registries to accept at least, and the limit many
// registries and clients enforce, so no image a registry serves is refused.
const MaxManifestSize = 4 << 20
