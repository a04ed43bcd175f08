package delta

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

// asyncHash is a sha256 of what is written to it, computed on a goroutine
// of its own: apply writes archives from files in the page cache, and
// hashing on the writer's goroutine made sha256 half of its time (the
// benchmark: 1.8 × cat + fsync); the other core hashes beside the copy.
// Writes are gathered into a few fixed buffers (the writer reuses its
// own): each is handed over full, and a writer ahead of the hash waits for
// one to come back. (Handing over a fresh 1 MiB buffer per small write,
// as an earlier version did when the pool ran dry, spent more CPU clearing
// memory than hashing.)
type asyncHash struct {
	h    hash.Hash
	cur  []byte // being filled; nil until taken from free
	work chan []byte
	free chan []byte
	done chan struct{}
}

const (
	asyncHashBuf  = 1 << 20
	asyncHashBufs = 4
)

func newAsyncHash() *asyncHash {
	a := &asyncHash{h: sha256.New(), work: make(chan []byte, asyncHashBufs), free: make(chan []byte, asyncHashBufs), done: make(chan struct{})}
	for range asyncHashBufs {
		a.free <- make([]byte, 0, asyncHashBuf)
	}
	go func() {
		defer close(a.done)
		for b := range a.work {
			a.h.Write(b)
			a.free <- b[:0] // never blocks: free holds every buffer
		}
	}()
	return a
}

func (a *asyncHash) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if a.cur == nil {
			a.cur = <-a.free
		}
		k := min(len(p), cap(a.cur)-len(a.cur))
		a.cur = append(a.cur, p[:k]...)
		p = p[k:]
		if len(a.cur) == cap(a.cur) {
			a.work <- a.cur
			a.cur = nil
		}
	}
	return n, nil
}

// Sum ends the hashing and returns the sha256 in hex. Write must not be
// called after it.
func (a *asyncHash) Sum() string {
	if len(a.cur) > 0 {
		a.work <- a.cur
	}
	a.cur = nil
	close(a.work)
	<-a.done
	return hex.EncodeToString(a.h.Sum(nil))
}

// abort ends the goroutine when the write failed.
func (a *asyncHash) abort() {
	select {
	case <-a.done:
	default:
		close(a.work)
		<-a.done
	}
}
