// Package iox holds the small io helpers several packages need: a reader
// that stops when its context ends and a writer that counts bytes.
package iox

import (
	"context"
	"hash"
	"io"
	"sync"
)

// ContextReader returns a reader of r that fails with ctx.Err() once ctx
// is done, so that a long io.Copy stops when its context is cancelled. Each
// Read checks ctx before reading; a Read already blocked in r is not
// interrupted.
func ContextReader(ctx context.Context, r io.Reader) io.Reader {
	return ctxReader{ctx: ctx, r: r}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// CountingWriter discards what it is given and counts it in N: put it in an
// io.MultiWriter or io.TeeReader to learn how many bytes went by.
type CountingWriter struct {
	N int64
}

func (c *CountingWriter) Write(p []byte) (int, error) {
	c.N += int64(len(p))
	return len(p), nil
}

// AsyncHash is a writer that feeds a hash on a goroutine of its own, so
// hashing what a writer produces costs that writer a copy, not the hash.
// Sum waits for every byte written before it.
type AsyncHash struct {
	once sync.Once
	h    hash.Hash
	ch   chan []byte
	free chan []byte
	done chan struct{}
}

// NewAsyncHash starts hashing into h.
func NewAsyncHash(h hash.Hash) *AsyncHash {
	a := &AsyncHash{h: h, ch: make(chan []byte, 2), free: make(chan []byte, 3), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for b := range a.ch {
			a.h.Write(b)
			select {
			case a.free <- b[:0]:
			default:
			}
		}
	}()
	return a
}

func (a *AsyncHash) Write(p []byte) (int, error) {
	var b []byte
	select {
	case b = <-a.free:
	default:
	}
	a.ch <- append(b, p...)
	return len(p), nil
}

// Sum ends the hashing and returns the digest; write nothing after it. It
// may be called more than once (a deferred call releases the goroutine on
// an error path).
func (a *AsyncHash) Sum() []byte {
	a.once.Do(func() { close(a.ch) })
	<-a.done
	return a.h.Sum(nil)
}
