package config

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"

	"go.podman.io/image/v5/docker/reference"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
	"github.com/airgap-bundle/airgap-bundle/internal/inputfile"
)

// Signature requirements, in the words of containers-policy.json(5).
const (
	RequireSigstoreSigned = "sigstoreSigned"
	RequireAcceptAnything = "insecureAcceptAnything"
	RequireReject         = "reject"
)

// SignatureRequirement is one [[signatures]] entry of a spec, or a group's
// signatures table. An image must satisfy the most specific scoped entry
// that matches it (the unscoped entry when none does) and its group's.
type SignatureRequirement struct {
	Require string // one of the Require* constants
	// Scope is host[:port] or host[:port]/repository-prefix as written;
	// empty for the spec's default entry and for a group's.
	Scope string
	// Names are what Scope stands for, normalised as an image reference
	// written the same way would be (see scopeNames): the first is its
	// reading as a reference, a second the literal docker.io namespace.
	Names []string
	Group string // the group whose requirement this is, if any
	// Keys are the public keys of which one must have signed (sigstoreSigned
	// with key or keys).
	Keys []Key
	// Fulcio, when set, accepts certificates from that CA for that identity
	// instead of keys.
	Fulcio *Fulcio
	// RekorKeys are the public keys of the Rekor logs whose signed entry
	// timestamps are accepted (required with Fulcio).
	RekorKeys []Key
	// VerifyPlatforms requires every bundled platform manifest of an index
	// to be signed as well, not only the index.
	VerifyPlatforms bool
	Pos             errdefs.Pos
}

// Key is a public key file of a requirement.
type Key struct {
	Name        string // as written in the spec
	Path        string // resolved against the spec's directory
	Fingerprint string // sha256:<hex> of the DER SubjectPublicKeyInfo
	// Data is the PEM file as read when the spec was checked: the key that
	// is used is the key that was checked, read once within its cap.
	Data []byte
}

// Fulcio names a certificate authority and the identity it must vouch for.
type Fulcio struct {
	CAFile       string // resolved
	CAName       string // as written
	CAData       []byte // the PEM certificates, read when the spec was checked
	OIDCIssuer   string
	SubjectEmail string
}

// Identity is the signer identity a Fulcio requirement accepts, as
// recorded in a lockfile.
func (f *Fulcio) Identity() string {
	return "issuer=" + f.OIDCIssuer + " subject=" + f.SubjectEmail
}

// NeedsSignatures says whether the requirement reads signatures.
func (r *SignatureRequirement) NeedsSignatures() bool {
	return r != nil && r.Require == RequireSigstoreSigned
}

// Where says which part of the spec the requirement comes from.
func (r *SignatureRequirement) Where() string {
	switch {
	case r.Group != "":
		return fmt.Sprintf("group %q signatures", r.Group)
	case r.Scope != "" && len(r.Names) > 0 && r.Names[0] != r.Scope:
		return fmt.Sprintf("signatures scope %q (%s)", r.Scope, r.Names[0])
	case r.Scope != "":
		return fmt.Sprintf("signatures scope %q", r.Scope)
	}
	return "default signatures"
}

// String describes the requirement for messages, without secrets (there
// are none: keys are public).
func (r *SignatureRequirement) String() string {
	s := r.Require
	switch {
	case r.Fulcio != nil:
		s += fmt.Sprintf(" by Fulcio CA %s for %s", r.Fulcio.CAName, r.Fulcio.Identity())
	case len(r.Keys) == 1:
		s += " by key " + r.Keys[0].Name
	case len(r.Keys) > 1:
		names := make([]string, len(r.Keys))
		for i, k := range r.Keys {
			names[i] = k.Name
		}
		s += " by one of the keys " + strings.Join(names, ", ")
	}
	return s + " (" + r.Where() + ")"
}

// Matches says whether a scoped requirement applies to ref: one of its
// names is the reference's host or a prefix of its repository at a '/'
// boundary.
func (r *SignatureRequirement) Matches(ref image.Reference) bool {
	return r.match(ref) >= 0
}

// match is the length of the longest of r's names that matches ref (0 for
// an unscoped requirement), or -1: the more of the name a scope covers,
// the more specific it is.
func (r *SignatureRequirement) match(ref image.Reference) int {
	if r.Scope == "" {
		return 0
	}
	names := r.Names
	if len(names) == 0 {
		names = []string{r.Scope}
	}
	name, best := ref.Name(), -1
	for _, n := range names {
		if (name == n || strings.HasPrefix(name, n+"/")) && len(n) > best {
			best = len(n)
		}
	}
	return best
}

// SignatureRequirements returns what an image of group g must satisfy: the
// most specific matching [[signatures]] entry (or the unscoped one) and
// the group's own. Requirements that accept anything are left out: an
// empty result means no signature policy applies.
func (s *Spec) SignatureRequirements(g *Group, ref image.Reference) []*SignatureRequirement {
	var best, def *SignatureRequirement
	bestLen := -1
	for _, r := range s.Signatures {
		if r.Scope == "" {
			def = r
			continue
		}
		// Entries name different repositories (decode refuses two with
		// the same reading), so two matches never cover the same length.
		if n := r.match(ref); n > bestLen {
			best, bestLen = r, n
		}
	}
	if best == nil {
		best = def
	}
	var out []*SignatureRequirement
	for _, r := range []*SignatureRequirement{best, g.Signatures} {
		if r != nil && r.Require != RequireAcceptAnything {
			out = append(out, r)
		}
	}
	return out
}

// SigstoreHosts lists the registry hosts of the images that need
// signatures, sorted: their sigstore attachments are read.
func (s *Spec) SigstoreHosts() []string {
	var hosts []string
	for _, g := range s.Groups {
		for _, img := range g.Images {
			for _, r := range s.SignatureRequirements(g, img.Ref) {
				if r.NeedsSignatures() && !slices.Contains(hosts, img.Ref.Domain()) {
					hosts = append(hosts, img.Ref.Domain())
				}
			}
		}
	}
	slices.Sort(hosts)
	return hosts
}

type rawSignature struct {
	Scope           *string  `toml:"scope"`
	Require         string   `toml:"require"`
	Key             *string  `toml:"key"`
	Keys            []string `toml:"keys"`
	FulcioCA        *string  `toml:"fulcio-ca"`
	OIDCIssuer      *string  `toml:"oidc-issuer"`
	SubjectEmail    *string  `toml:"subject-email"`
	RekorKey        *string  `toml:"rekor-key"`
	RekorKeys       []string `toml:"rekor-keys"`
	VerifyPlatforms *bool    `toml:"verify-platforms"`
}

var signatureKinds = map[string]kind{
	"scope": kString, "require": kString, "key": kString, "keys": kStrings,
	"fulcio-ca": kString, "oidc-issuer": kString, "subject-email": kString,
	"rekor-key": kString, "rekor-keys": kStrings, "verify-platforms": kBool,
}

var signatureExamples = map[string]string{
	"scope":         `"registry.example.com/team"`,
	"require":       `"sigstoreSigned"`,
	"key":           `"keys/cosign.pub"`,
	"keys":          `["keys/a.pub", "keys/b.pub"]`,
	"fulcio-ca":     `"fulcio.pem"`,
	"oidc-issuer":   `"https://token.actions.githubusercontent.com"`,
	"subject-email": `"release@example.com"`,
	"rekor-key":     `"rekor.pub"`,
	"rekor-keys":    `["rekor.pub"]`,
}

// signature decodes one requirement; p is its place in the spec, label
// what messages call it.
func (d *decoder) signature(raw *rawSignature, p []any, label string, scoped bool) *SignatureRequirement {
	sd := &sigDecoder{d: d, p: p, label: label}
	r := &SignatureRequirement{Require: raw.Require, Pos: d.pos(p...)}
	before := d.errs.count()
	sd.scope(raw.Scope, scoped, r)
	if !sd.require(raw.Require) {
		return nil
	}
	fields := map[string]bool{
		"key": raw.Key != nil, "keys": raw.Keys != nil, "fulcio-ca": raw.FulcioCA != nil,
		"oidc-issuer": raw.OIDCIssuer != nil, "subject-email": raw.SubjectEmail != nil,
		"rekor-key": raw.RekorKey != nil, "rekor-keys": raw.RekorKeys != nil, "verify-platforms": raw.VerifyPlatforms != nil,
	}
	if raw.Require != RequireSigstoreSigned {
		for _, k := range sortedBoolKeys(fields) {
			d.add(sd.at(k), "%s: %s goes with require = %q only", label, k, RequireSigstoreSigned)
		}
		if d.errs.count() > before {
			return nil
		}
		return r
	}
	if raw.VerifyPlatforms != nil {
		r.VerifyPlatforms = *raw.VerifyPlatforms
	}
	r.Keys = sd.keyList("key", "keys", raw.Key, raw.Keys)
	r.RekorKeys = sd.keyList("rekor-key", "rekor-keys", raw.RekorKey, raw.RekorKeys)
	fulcio := raw.FulcioCA != nil || raw.OIDCIssuer != nil || raw.SubjectEmail != nil
	switch {
	case fulcio && (raw.Key != nil || raw.Keys != nil):
		d.add(p, "%s: key(s) and fulcio-ca exclude each other; keep one", label)
	case fulcio:
		r.Fulcio = sd.fulcio(raw)
	case raw.Key == nil && raw.Keys == nil:
		d.add(p, "%s: require = %q needs key, keys, or fulcio-ca with oidc-issuer, subject-email and rekor-key", label, RequireSigstoreSigned)
	}
	if d.errs.count() > before {
		return nil
	}
	return r
}

// sigDecoder decodes the parts of one requirement, each reported at its
// key.
type sigDecoder struct {
	d     *decoder
	p     []any
	label string
}

func (sd *sigDecoder) at(k string) []any { return append(slices.Clip(sd.p), k) }

// scope reads a scope as an image reference written the same way is.
func (sd *sigDecoder) scope(scope *string, scoped bool, r *SignatureRequirement) {
	if scope == nil {
		return
	}
	d, label := sd.d, sd.label
	if !scoped {
		d.add(sd.at("scope"), "%s: scope belongs in a top-level [[signatures]] entry; a group's signatures apply to its images", label)
	} else if s := *scope; !validScope(s) {
		d.add(sd.at("scope"), "%s: scope %q is not host[:port] or host[:port]/repository (no scheme, tag or digest)", label, s)
	} else if names, err := scopeNames(s, d.defaultRegistry); err != nil {
		d.add(sd.at("scope"), "%s: scope %q names no repository an image could have: %v", label, s, err)
	} else {
		r.Scope, r.Names = s, names
	}
}

// require says whether require is one of the three, with a hint when it
// looks like one.
func (sd *sigDecoder) require(require string) bool {
	d, label := sd.d, sd.label
	switch require {
	case RequireSigstoreSigned, RequireAcceptAnything, RequireReject:
		return true
	case "":
		d.add(sd.p, "%s: require is missing: want %q, %q or %q", label, RequireSigstoreSigned, RequireAcceptAnything, RequireReject)
		return false
	}
	hint := ""
	for _, w := range []string{RequireSigstoreSigned, RequireAcceptAnything, RequireReject} {
		if strings.EqualFold(w, require) || strings.EqualFold(strings.ReplaceAll(w, "-", ""), strings.ReplaceAll(require, "-", "")) {
			hint = fmt.Sprintf(" (did you mean %q?)", w)
		}
	}
	if require == "signedBy" {
		hint = " (GPG signatures are not supported: use sigstoreSigned)"
	}
	d.add(sd.at("require"), "%s: require = %q: want %q, %q or %q%s", label, require, RequireSigstoreSigned, RequireAcceptAnything, RequireReject, hint)
	return false
}

// keyList reads the keys of "key = ..." or "keys = [...]" (one of the
// two), each once.
func (sd *sigDecoder) keyList(oneKey, manyKey string, one *string, many []string) []Key {
	switch {
	case one != nil && many != nil:
		sd.d.add(sd.at(manyKey), "%s: %s and %s exclude each other; keep one", sd.label, oneKey, manyKey)
		return nil
	case one != nil:
		return sd.keys(oneKey, []string{*one})
	case many != nil && len(many) == 0:
		sd.d.add(sd.at(manyKey), "%s: %s is empty", sd.label, manyKey)
		return nil
	}
	return sd.keys(manyKey, many)
}

func (sd *sigDecoder) keys(k string, names []string) []Key {
	var out []Key
	for _, name := range names {
		if key, ok := sd.keyFile(k, name); ok {
			if slices.ContainsFunc(out, func(o Key) bool { return o.Fingerprint == key.Fingerprint }) {
				sd.d.add(sd.at(k), "%s: %s names the key %s twice", sd.label, k, name)
				continue
			}
			out = append(out, key)
		}
	}
	return out
}

// keyFile reads one PEM public key, within its cap, and fingerprints it.
func (sd *sigDecoder) keyFile(k, name string) (Key, bool) {
	d, label := sd.d, sd.label
	if name == "" {
		d.add(sd.at(k), "%s: %s is empty", label, k)
		return Key{}, false
	}
	key := Key{Name: name, Path: d.relPath(name)}
	data, err := inputfile.Read(d.ctx, key.Path, inputfile.MaxSmall)
	if err != nil {
		d.add(sd.at(k), "%s: %s %s: %v", label, k, name, unwrapPathError(err))
		return Key{}, false
	}
	fp, err := fingerprint(data)
	if err != nil {
		d.add(sd.at(k), "%s: %s %s: %v", label, k, name, err)
		return Key{}, false
	}
	key.Fingerprint, key.Data = fp, data
	return key, true
}

// fulcio reads a keyless requirement: the CA, the identity, and the need
// for a Rekor key.
func (sd *sigDecoder) fulcio(raw *rawSignature) *Fulcio {
	d, label := sd.d, sd.label
	f := &Fulcio{}
	for _, v := range []struct {
		k   string
		v   *string
		dst *string
	}{{"fulcio-ca", raw.FulcioCA, &f.CAName}, {"oidc-issuer", raw.OIDCIssuer, &f.OIDCIssuer}, {"subject-email", raw.SubjectEmail, &f.SubjectEmail}} {
		switch {
		case v.v == nil:
			d.add(sd.p, "%s: a Fulcio requirement needs fulcio-ca, oidc-issuer and subject-email; %s is missing", label, v.k)
		case *v.v == "":
			d.add(sd.at(v.k), "%s: %s is empty", label, v.k)
		default:
			*v.dst = *v.v
		}
	}
	if f.CAName != "" {
		f.CAFile = d.relPath(f.CAName)
		data, err := inputfile.Read(d.ctx, f.CAFile, inputfile.MaxSmall)
		if err != nil {
			d.add(sd.at("fulcio-ca"), "%s: fulcio-ca: %s: %v", label, f.CAFile, unwrapPathError(err))
		}
		f.CAData = data
	}
	if raw.RekorKey == nil && raw.RekorKeys == nil {
		d.add(sd.p, "%s: a Fulcio requirement needs rekor-key (or rekor-keys): certificates are short-lived and are checked against the log's timestamp", label)
	}
	return f
}

func sortedBoolKeys(m map[string]bool) []string {
	var out []string
	for k, v := range m {
		if v {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func validScope(s string) bool {
	if strings.Contains(s, "://") || strings.ContainsAny(s, "@ ") {
		return false
	}
	host, path, hasPath := strings.Cut(s, "/")
	if !hostRE.MatchString(host) {
		return false
	}
	if !hasPath {
		return true
	}
	return locationRE.MatchString(s) && !strings.HasSuffix(path, "/") && !strings.Contains(path, ":")
}

// scopeNames reads a scope the way an image reference written the same
// way is read, so that a scope matches the images it names: "busybox" and
// "docker.io/busybox" are docker.io/library/busybox, as "busybox:1.36" is;
// "team/app" is on the default registry; "index.docker.io" is docker.io.
// A first component with a dot or a port, or localhost (or a bracketed
// IPv6 address), is a host, as in references; a scope of a host alone
// covers that registry.
//
// A docker.io scope written with the host and one path component
// ("docker.io/untrusted") also keeps its literal reading, the namespace
// docker.io/untrusted/...: that is what such a scope matched before
// references were normalised, and "reject" must not silently stop
// covering it.
func scopeNames(s, defaultRegistry string) ([]string, error) {
	first, rest, hasPath := strings.Cut(s, "/")
	if !hasPath && isHost(first) {
		named, err := reference.ParseNormalizedNamed(first + "/x")
		if err != nil {
			return nil, err
		}
		return []string{reference.Domain(named)}, nil
	}
	ref, err := image.ParseReference(s, defaultRegistry)
	if err != nil {
		return nil, err
	}
	names := []string{ref.Name()}
	if hasPath && isHost(first) && reference.Domain(ref.Named) == "docker.io" && !strings.Contains(rest, "/") {
		if literal := "docker.io/" + rest; literal != names[0] {
			names = append(names, literal)
		}
	}
	return names, nil
}

// isHost says whether the first component of a scope is a registry host,
// by the rule of the reference grammar (see image.ParseReference).
func isHost(first string) bool {
	return strings.ContainsAny(first, ".:[") || first == "localhost" || strings.ToLower(first) != first
}

// KeyFingerprint reads a PEM public key (as cosign writes cosign.pub) and
// returns sha256:<hex> of its DER SubjectPublicKeyInfo.
func KeyFingerprint(path string) (string, error) {
	data, err := inputfile.Read(context.Background(), path, inputfile.MaxSmall)
	if err != nil {
		return "", unwrapPathError(err)
	}
	return fingerprint(data)
}

func fingerprint(data []byte) (string, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return "", fmt.Errorf("not a PEM file")
	}
	// The key itself is parsed by containers/image when it is used; the
	// spec only checks its form (crypto/x509 here would make go-digest
	// accept sha512 references: see image.ParseReference).
	if block.Type != "PUBLIC KEY" || len(block.Bytes) == 0 {
		return "", fmt.Errorf("not a PEM public key (a %q block; want \"PUBLIC KEY\", as cosign writes cosign.pub)", block.Type)
	}
	sum := sha256.Sum256(block.Bytes)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
