package schemas

import (
	"bytes"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/airgap-bundle/airgap-bundle/delta"
)

func compileOne(t *testing.T, id string, data []byte) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource(id, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(id)
	if err != nil {
		t.Fatalf("compiling %s: %v", id, err)
	}
	return s
}

func schemaAccepts(t *testing.T, s *jsonschema.Schema, doc string) bool {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
	if err != nil {
		return false
	}
	return s.Validate(inst) == nil
}

const (
	invDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	invHex    = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// The inventory schema and delta.ParseInventory give every document the
// same verdict.
func TestInventoryAgreement(t *testing.T) {
	s := compileOne(t, InventoryID, Inventory())
	blob := `{"digest": "` + invDigest + `", "size": 12, "where": "core.tar"}`
	for _, c := range []struct {
		name, doc string
		ok        bool
	}{
		{"empty", `{"version": 1, "source": "directory dist", "blobs": []}`, true},
		{"one blob", `{"version": 1, "source": "registry r:5000", "blobs": [` + blob + `]}`, true},
		{"empty where", `{"version": 1, "source": "s", "blobs": [{"digest": "` + invDigest + `", "size": 0, "where": ""}]}`, true},
		{"version 2", `{"version": 2, "source": "s", "blobs": []}`, false},
		{"no source", `{"version": 1, "source": "", "blobs": []}`, false},
		{"unknown field", `{"version": 1, "source": "s", "blobs": [], "extra": true}`, false},
		{"unknown blob field", `{"version": 1, "source": "s", "blobs": [{"digest": "` + invDigest + `", "size": 1, "where": "", "x": 1}]}`, false},
		{"sha512", `{"version": 1, "source": "s", "blobs": [{"digest": "sha512:` + invHex + invHex + `", "size": 1, "where": ""}]}`, false},
		{"upper-case hex", `{"version": 1, "source": "s", "blobs": [{"digest": "sha256:` + strings.ToUpper(invHex) + `", "size": 1, "where": ""}]}`, false},
		{"negative size", `{"version": 1, "source": "s", "blobs": [{"digest": "` + invDigest + `", "size": -1, "where": ""}]}`, false},
		{"size not a number", `{"version": 1, "source": "s", "blobs": [{"digest": "` + invDigest + `", "size": "1", "where": ""}]}`, false},
	} {
		_, err := delta.ParseInventory([]byte(c.doc), "have.json")
		if got := schemaAccepts(t, s, c.doc); got != c.ok || (err == nil) != c.ok {
			t.Errorf("%s: schema accepts %v, ParseInventory error %v; want accepted %v", c.name, got, err, c.ok)
		}
	}
}

// delta.json's names are plain file names for the schema as for
// delta.Parse: a control character (a newline would forge a SHA256SUMS
// line) is refused by both.
func TestDeltaNamesAgreement(t *testing.T) {
	s := compileOne(t, DeltaID, Delta())
	doc := func(name string) string {
		return `{"version": 1, "base": {"source": "v1.lock"}, "lockfile-sha256": "` + invHex + `", "archives": [` +
			`{"group": "core", "name": "` + name + `", "size": 10, "sha256": "` + invHex + `", "unchanged": true}]}`
	}
	for name, ok := range map[string]bool{
		"core.tar.zst": true, "a b.tar": true, "ü.tar": true,
		`a\nb.tar`: false, `a\u0000.tar`: false, `a\u007f.tar`: false, "a/b.tar": false, `a\\b.tar`: false, "..": false, "": false,
	} {
		_, err := delta.Parse([]byte(doc(name)), "delta.json")
		if got := schemaAccepts(t, s, doc(name)); got != ok || (err == nil) != ok {
			t.Errorf("name %q: schema accepts %v, Parse error %v; want accepted %v", name, got, err, ok)
		}
	}
}
