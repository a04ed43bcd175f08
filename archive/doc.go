// Package archive is the air-gap image archive format, read and written in
// one place: one tar per group (plain, gzip or zstd), in the shape "docker
// save" writes on Docker 25+ with the containerd image store, so that k3s,
// RKE2, containerd ("ctr images import"), docker load, podman load and
// skopeo all read it. Write (write.go) makes archives from the model
// (model.go); Read (read.go, graph.go) turns an untrusted archive back into
// that model (contents.go), and compress.go holds both directions of
// compression.
//
// An archive holds, in this order (entries sorted by name, as containerd's
// exporter and moby's tar export both write them):
//
//	blobs/                 directory, 0755
//	blobs/sha256/          directory, 0755
//	blobs/sha256/<hex>     every index, manifest, config and layer blob, byte for
//	                       byte as the registry served it, once per archive
//	index.json             OCI image index: one entry per image name
//	manifest.json          Docker archive manifest: one entry per image
//	oci-layout             {"imageLayoutVersion":"1.0.0"}
//	repositories           legacy Docker name → tag → top layer map (only when
//	                       some image has a tag)
//
// containerd's importer (and so k3s, RKE2 and Docker with the containerd
// store) takes the OCI path whenever oci-layout is present: it imports the
// blobs and names each index.json entry by its io.containerd.image.name
// annotation, so registry digests survive. docker load with the classic store,
// and Docker-format readers such as RKE2's runtime image lookup and
// containers/image's docker-archive transport, read manifest.json.
//
// Output is deterministic: the same images and blobs give the same bytes on
// any machine (fixed entry order, fixed modification time, uid/gid 0, no user
// or group names, fixed modes, fixed compressor settings).
package archive
