package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Media presets for max-size: what fits on each, per file.
var sizePresets = map[string]int64{
	"fat32":  4<<30 - 1,      // FAT32's largest file: 4 GiB - 1 byte
	"dvd":    4_700_000_000,  // a single-layer DVD (4.7 GB)
	"bd25":   25_000_000_000, // a single-layer Blu-ray (25 GB)
	"dvd-dl": 8_500_000_000,  // a dual-layer DVD (8.5 GB)
	"bd50":   50_000_000_000, // a dual-layer Blu-ray (50 GB)
}

// sizeUnits are the units a size may carry: SI (powers of 1000) and IEC
// (powers of 1024), as people write them on media and in tools.
var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// minSize is the smallest max-size accepted: below it no archive of even
// one small image fits.
const minSize = 1 << 20

// ParseSize reads a max-size: a whole number of bytes, a number with a
// unit ("4GiB", "4.7GB", "100MiB", "500 MB") or a preset ("fat32", "dvd",
// "dvd-dl", "bd25", "bd50").
func ParseSize(v any) (int64, error) {
	var n float64
	switch t := v.(type) {
	case int64:
		n = float64(t)
	case int:
		n = float64(t)
	case string:
		s := strings.ToLower(strings.TrimSpace(t))
		if p, ok := sizePresets[s]; ok {
			return p, nil
		}
		i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		num, unit := s, ""
		if i >= 0 {
			num, unit = s[:i], strings.TrimSpace(s[i:])
		}
		mult, ok := sizeUnits[unit]
		f, err := strconv.ParseFloat(num, 64)
		if !ok || err != nil || num == "" {
			return 0, fmt.Errorf("%q is not a size: write bytes, a number with a unit (\"4GiB\", \"4.7GB\", \"100MiB\") or a preset (fat32, dvd, dvd-dl, bd25, bd50)", t)
		}
		n = f * mult
	default:
		return 0, fmt.Errorf("a size must be a number of bytes or a string such as \"4GiB\"")
	}
	if math.IsNaN(n) || n < minSize || n > math.MaxInt64/2 {
		return 0, fmt.Errorf("%v: a size must be at least 1 MiB", v)
	}
	return int64(math.Floor(n)), nil
}
