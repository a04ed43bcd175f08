package image

import "fmt"

// IndexMode says which index an archive holds for a multi-platform image.
type IndexMode string

const (
	// IndexOriginal keeps the registry's index blob and its digest, even
	// when some of the platforms it lists are not bundled.
	IndexOriginal IndexMode = "original"
	// IndexFiltered writes a new index listing only the bundled platforms
	// (its digest is recorded in the lockfile as filtered-digest).
	IndexFiltered IndexMode = "filtered"
)

// ParseIndexMode checks a spec or lockfile value.
func ParseIndexMode(s string) (IndexMode, error) {
	switch m := IndexMode(s); m {
	case IndexOriginal, IndexFiltered:
		return m, nil
	}
	return "", fmt.Errorf("index = %q: want %q (keep the registry's index and its digest) or %q (a new index with only the included platforms)", s, IndexOriginal, IndexFiltered)
}
