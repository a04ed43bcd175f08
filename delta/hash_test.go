package delta

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// The asynchronous hash is the sha256 of what was written, whatever the
// sizes of the writes (the writer reuses its buffer: it is copied).
func TestAsyncHash(t *testing.T) {
	data := make([]byte, 5<<20+123)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	a := newAsyncHash()
	buf := make([]byte, 3<<20)
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+r.IntN(len(buf)))
		copy(buf, rest[:n])
		a.Write(buf[:n])
		clear(buf) // the writer's buffer changes at once
		rest = rest[n:]
	}
	want := sha256.Sum256(data)
	if got := a.Sum(); got != hex.EncodeToString(want[:]) {
		t.Fatalf("asyncHash = %s, want %x", got, want)
	}
	newAsyncHash().abort() // ends without a write, without blocking
}
