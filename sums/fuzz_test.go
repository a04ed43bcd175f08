package sums

import (
	"testing"
)

// Every usable line survives Format and Parse unchanged; nothing Format
// writes is reported as bad.
func FuzzParse(f *testing.F) {
	h := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	f.Add([]byte(h + "  core.tar\n" + h + " *all.tar.zst\r\n"))
	f.Add([]byte(h + "  a/b.tar\nnot a line\n\n"))
	f.Add([]byte("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855  x.tgz"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, bad := Parse(data)
		for _, b := range bad {
			if b.Line < 1 || b.Reason == "" {
				t.Fatalf("bad line without a place or reason: %+v", b)
			}
		}
		out, err := Format(s)
		if err != nil {
			t.Fatalf("Format of parsed sums: %v", err)
		}
		s2, bad2 := Parse(out)
		if len(bad2) != 0 {
			t.Fatalf("Format wrote bad lines: %v", bad2)
		}
		if len(s2) != len(s) {
			t.Fatalf("round trip: %d entries, then %d", len(s), len(s2))
		}
		for n, sum := range s {
			if s2[n] != sum {
				t.Fatalf("round trip: %s: %s, then %s", n, sum, s2[n])
			}
		}
	})
}
