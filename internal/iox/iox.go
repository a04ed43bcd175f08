// Package iox holds the small io helpers several packages need: a reader
// that stops when its context ends and a writer that counts bytes.
package iox

import (
	"context"
	"io"
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
