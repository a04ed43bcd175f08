package config

import (
	"bufio"
	"bytes"
	"strings"

	"github.com/airgap-bundle/airgap-bundle/errdefs"
	"github.com/airgap-bundle/airgap-bundle/image"
)

// parseImageList reads the k3s release format (k3s-images.txt): one
// reference a line; blank lines and # comments are ignored, a comment may
// also follow a reference after white space.
func parseImageList(data []byte, file, defaultRegistry string, errs *errorList) []Image {
	var out []Image
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.Index(line, "#"); i == 0 || (i > 0 && (line[i-1] == ' ' || line[i-1] == '\t')) {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		pos := errdefs.Pos{File: file, Line: n}
		if strings.ContainsAny(line, " \t") {
			errs.add(pos, "one image reference a line, found %q", line)
			continue
		}
		ref, err := image.ParseReference(line, defaultRegistry)
		if err != nil {
			errs.add(pos, "%v", err)
			continue
		}
		out = append(out, Image{Ref: ref, Pos: pos})
	}
	if err := sc.Err(); err != nil {
		errs.add(errdefs.Pos{File: file}, "reading image list: %v", err)
	}
	return out
}
