package archive

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// BenchmarkCompression measures the archive compressors alone, from memory
// to io.Discard: `make bench` runs it with -cpu 1 and -cpu N to show that
// compression uses every core (the build itself is bound by the network
// and the disk as often as by compression).
func BenchmarkCompression(b *testing.B) {
	const size = 64 << 20
	inputs := map[string][]byte{
		"compressible":   compressibleBytes(size),
		"incompressible": randomBytes(7, size),
	}
	for _, c := range []Compression{Gzip, Zstd} {
		for _, name := range []string{"compressible", "incompressible"} {
			data := inputs[name]
			b.Run(fmt.Sprintf("%s/%s", c, name), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					zw, err := newCompressor(io.Discard, c)
					if err != nil {
						b.Fatal(err)
					}
					for p := data; len(p) > 0; {
						k := min(len(p), 256<<10) // the archive writer's buffer
						if _, err := zw.Write(p[:k]); err != nil {
							b.Fatal(err)
						}
						p = p[k:]
					}
					if err := zw.Close(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// compressibleBytes looks like an uncompressed layer of text files: words
// from a small vocabulary, about 3:1 under gzip.
func compressibleBytes(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	words := make([][]byte, 512)
	for i := range words {
		w := make([]byte, 2+r.IntN(8))
		for j := range w {
			w[j] = byte('a' + r.IntN(26))
		}
		words[i] = w
	}
	var buf bytes.Buffer
	for buf.Len() < n {
		buf.Write(words[r.IntN(len(words))])
		if r.IntN(12) == 0 {
			buf.WriteByte('\n')
		} else {
			buf.WriteByte(' ')
		}
	}
	return buf.Bytes()[:n]
}
