package iox

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestContextReader(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		ctx  context.Context
		want string
		err  error
	}{
		{"live context", context.Background(), "some bytes", nil},
		{"cancelled context", cancelled, "", context.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := io.ReadAll(ContextReader(tc.ctx, strings.NewReader("some bytes")))
			if string(got) != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("ReadAll = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// Cancelling half way stops the copy at the next Read.
func TestContextReaderCancelMidway(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := ContextReader(ctx, strings.NewReader("0123456789"))
	buf := make([]byte, 4)
	if n, err := r.Read(buf); n != 4 || err != nil {
		t.Fatalf("first Read = %d, %v", n, err)
	}
	cancel()
	if n, err := r.Read(buf); n != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("Read after cancel = %d, %v; want 0, context.Canceled", n, err)
	}
}

func TestCountingWriter(t *testing.T) {
	cases := []struct {
		name   string
		writes []string
		want   int64
	}{
		{"none", nil, 0},
		{"one", []string{"hello"}, 5},
		{"several", []string{"a", "", "bcd", strings.Repeat("x", 1000)}, 1004},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c CountingWriter
			for _, w := range tc.writes {
				if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if c.N != tc.want {
				t.Errorf("N = %d, want %d", c.N, tc.want)
			}
		})
	}
}
