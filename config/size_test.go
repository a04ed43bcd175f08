package config

import "testing"

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   any
		want int64
		ok   bool
	}{
		{"fat32", 4<<30 - 1, true},
		{"FAT32", 4<<30 - 1, true},
		{"dvd", 4_700_000_000, true},
		{"bd25", 25_000_000_000, true},
		{"4GiB", 4 << 30, true},
		{"4.7GB", 4_700_000_000, true},
		{"100 MiB", 100 << 20, true},
		{"1.5gib", 3 << 29, true},
		{"2097152", 2 << 20, true},
		{int64(5_000_000_000), 5_000_000_000, true},
		{"1MiB", 1 << 20, true},
		{"1023KiB", 0, false}, // under 1 MiB
		{"4 furlongs", 0, false},
		{"GiB", 0, false},
		{"-4GiB", 0, false},
		{"", 0, false},
		{int64(0), 0, false},
		{true, 0, false},
	} {
		got, err := ParseSize(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseSize(%#v) = %d, %v; want %d, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}
