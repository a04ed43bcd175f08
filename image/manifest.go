package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	digest "github.com/opencontainers/go-digest"
)

// Descriptor identifies one blob: its media type, digest and size in bytes.
// In a Docker archive (no blobs/), a file named by path is described by the
// sha256 of its content and its size.
//
// Descriptor and Manifest are the registry's documents as every package
// speaks of them: the archive's model, the resolver, the trust checks.
type Descriptor struct {
	MediaType MediaType
	Digest    digest.Digest
	Size      int64
}

// Manifest is one platform's image manifest: the manifest blob itself, its
// config and its layers, in order. In a Docker archive, which stores no
// manifest blobs, Descriptor is zero.
type Manifest struct {
	Descriptor
	Config Descriptor
	Layers []Descriptor

	// Platform is "os/arch[/variant]", from the index entry that lists the
	// manifest or else from the config; "" when neither says. Filled by
	// archive.Read, not by ParseManifest.
	Platform string
	// Attestation marks a BuildKit attestation manifest (archive.Read).
	Attestation bool
	// DiffIDs are the config's rootfs.diff_ids, when the config was read
	// (archive.Read).
	DiffIDs []digest.Digest
}

// TotalSize is manifest + config + layers, as their descriptors say.
func (m Manifest) TotalSize() int64 {
	n := m.Size + m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

// ParseManifest reads an image manifest blob (OCI image manifest or Docker
// schema 2) of the given media type into a Manifest whose Descriptor is the
// blob's own (media type, sha256 digest of blob, length). A mediaType field
// in the blob must agree with mediaType.
func ParseManifest(blob []byte, mediaType MediaType) (Manifest, error) {
	if !mediaType.IsManifest() {
		return Manifest{}, fmt.Errorf("media type %q is not an image manifest", mediaType)
	}
	var m struct {
		SchemaVersion *int              `json:"schemaVersion"`
		MediaType     MediaType         `json:"mediaType"`
		Config        *jsonDescriptor   `json:"config"`
		Layers        []*jsonDescriptor `json:"layers"`
		Manifests     json.RawMessage   `json:"manifests"`
	}
	if err := json.Unmarshal(blob, &m); err != nil {
		return Manifest{}, fmt.Errorf("manifest: %w", err)
	}
	switch {
	case m.SchemaVersion == nil || *m.SchemaVersion != 2:
		return Manifest{}, errors.New("manifest: schemaVersion is not 2")
	case m.MediaType != "" && m.MediaType != mediaType:
		return Manifest{}, fmt.Errorf("manifest: mediaType %q, expected %q", m.MediaType, mediaType)
	case m.MediaType == "" && mediaType == DockerManifest:
		return Manifest{}, errors.New("Docker schema 2 manifest without mediaType")
	case m.Manifests != nil:
		return Manifest{}, errors.New("manifest: has \"manifests\": an index, not an image manifest")
	case m.Config == nil:
		return Manifest{}, errors.New("manifest: no config")
	}
	out := Manifest{
		Descriptor: Descriptor{MediaType: mediaType, Digest: digest.FromBytes(blob), Size: int64(len(blob))},
		Layers:     make([]Descriptor, 0, len(m.Layers)),
	}
	var err error
	if out.Config, err = m.Config.descriptor("config"); err != nil {
		return Manifest{}, err
	}
	for i, l := range m.Layers {
		d, err := l.descriptor(fmt.Sprintf("layer %d", i))
		if err != nil {
			return Manifest{}, err
		}
		out.Layers = append(out.Layers, d)
	}
	return out, nil
}

type jsonDescriptor struct {
	MediaType MediaType     `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      *int64        `json:"size"`
}

func (j *jsonDescriptor) descriptor(what string) (Descriptor, error) {
	if j == nil {
		return Descriptor{}, fmt.Errorf("manifest: %s is null", what)
	}
	if err := j.Digest.Validate(); err != nil {
		return Descriptor{}, fmt.Errorf("manifest: %s digest %q: %w", what, j.Digest, err)
	}
	if j.Size == nil || *j.Size < 0 {
		return Descriptor{}, fmt.Errorf("manifest: %s %s has no valid size", what, j.Digest)
	}
	return Descriptor{MediaType: j.MediaType, Digest: j.Digest, Size: *j.Size}, nil
}

// FilterIndex returns a new index of the same media type (OCI image index or
// Docker manifest list) listing only the entries whose digests are in keep,
// in the original order. Nothing else changes: every other field and every
// kept entry keeps its content and the top-level fields keep their order;
// the output is compact JSON, so the same blob and keep set (in any order)
// always give the same bytes. Every digest in keep must be listed in the
// index. Used for the "filtered" index mode; the caller records the digest
// of the result.
func FilterIndex(blob []byte, mediaType MediaType, keep []digest.Digest) ([]byte, error) {
	if !mediaType.IsIndex() {
		return nil, fmt.Errorf("media type %q is not an image index", mediaType)
	}
	if len(keep) == 0 {
		return nil, errors.New("filtering an index to no entries")
	}
	fields, err := objectFields(blob)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	var sawManifests, sawSchema bool
	var out bytes.Buffer
	out.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			out.WriteByte(',')
		}
		key, err := json.Marshal(f.key)
		if err != nil {
			return nil, err
		}
		out.Write(key)
		out.WriteByte(':')
		value := f.value
		switch f.key {
		case "schemaVersion":
			var v int
			if err := json.Unmarshal(value, &v); err != nil || v != 2 {
				return nil, errors.New("index: schemaVersion is not 2")
			}
			sawSchema = true
		case "mediaType":
			var mt MediaType
			if err := json.Unmarshal(value, &mt); err != nil {
				return nil, fmt.Errorf("index: mediaType: %w", err)
			}
			if mt != mediaType {
				return nil, fmt.Errorf("index: mediaType %q, expected %q", mt, mediaType)
			}
		case "manifests":
			if value, err = filterManifests(value, keep); err != nil {
				return nil, err
			}
			sawManifests = true
		}
		if err := json.Compact(&out, value); err != nil {
			return nil, fmt.Errorf("index: %s: %w", f.key, err)
		}
	}
	out.WriteByte('}')
	if !sawSchema {
		return nil, errors.New("index: no schemaVersion")
	}
	if !sawManifests {
		return nil, errors.New("index: no manifests")
	}
	return out.Bytes(), nil
}

// filterManifests filters the raw "manifests" array of an index.
func filterManifests(raw json.RawMessage, keep []digest.Digest) (json.RawMessage, error) {
	var entries []json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("index: manifests: %w", err)
	}
	found := map[digest.Digest]bool{}
	var b bytes.Buffer
	b.WriteByte('[')
	n := 0
	for i, e := range entries {
		var d struct {
			Digest digest.Digest `json:"digest"`
		}
		if err := json.Unmarshal(e, &d); err != nil {
			return nil, fmt.Errorf("index: manifests[%d]: %w", i, err)
		}
		if !slices.Contains(keep, d.Digest) {
			continue
		}
		found[d.Digest] = true
		if n > 0 {
			b.WriteByte(',')
		}
		if err := json.Compact(&b, e); err != nil {
			return nil, fmt.Errorf("index: manifests[%d]: %w", i, err)
		}
		n++
	}
	b.WriteByte(']')
	for _, d := range keep {
		if !found[d] {
			return nil, fmt.Errorf("index does not list %s", d)
		}
	}
	return b.Bytes(), nil
}

type field struct {
	key   string
	value json.RawMessage
}

// objectFields splits a JSON object into its fields, in document order.
// Duplicate keys are refused: readers disagree on which one wins.
func objectFields(blob []byte) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(blob))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	var fields []field
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("malformed object")
		}
		if seen[key] {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		fields = append(fields, field{key: key, value: v})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return fields, nil
}
