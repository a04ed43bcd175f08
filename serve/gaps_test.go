package serve

import (
	"encoding/json"
	"strconv"
	"testing"
)

// An unsatisfiable range is a registry JSON error (416 RANGE_INVALID, the
// size in Content-Range) like every other error, not http.ServeContent's
// text/plain; so is a failed precondition.
func TestServeRangeErrorsAreJSON(t *testing.T) {
	f, srv := start(t)
	base := srv.URL + "/v2/docker.io/library/busybox"
	layer := f.amd64.Layers[0]
	for _, u := range []string{base + "/blobs/" + layer.Digest.String(), base + "/manifests/1.36", base + "/tags/list"} {
		for _, rg := range []string{"bytes=99999999-", "bytes=abc", "bytes=5-2"} {
			resp, body := do(t, "GET", u, "Range", rg)
			var e struct{ Errors []struct{ Code string } }
			if resp.StatusCode != 416 || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &e) != nil ||
				len(e.Errors) != 1 || e.Errors[0].Code != "RANGE_INVALID" || resp.Header.Get("Docker-Content-Digest") != "" {
				t.Errorf("%s Range %s: %d %s %q", u, rg, resp.StatusCode, resp.Header, body)
			}
		}
	}
	resp, _ := do(t, "GET", base+"/blobs/"+layer.Digest.String(), "Range", "bytes=99999999-")
	if got, want := resp.Header.Get("Content-Range"), "bytes */"+strconv.FormatInt(layer.Size, 10); got != want {
		t.Errorf("Content-Range %q, want %q", got, want)
	}
	resp, body := do(t, "GET", base+"/blobs/"+layer.Digest.String(), "If-Match", `"sha256:other"`)
	var e struct{ Errors []struct{ Code string } }
	if resp.StatusCode != 412 || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &e) != nil || len(e.Errors) != 1 {
		t.Errorf("If-Match: %d %s %q", resp.StatusCode, resp.Header, body)
	}
}
