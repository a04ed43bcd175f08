package logs

import (
	"bytes"
	"log/slog"
	"testing"
)

func TestOrDiscard(t *testing.T) {
	if OrDiscard(nil) == nil || OrDiscard(nil).Enabled(t.Context(), slog.LevelError) {
		t.Fatal("OrDiscard(nil) must be a logger that logs nothing")
	}
	var b bytes.Buffer
	l := slog.New(slog.NewTextHandler(&b, nil))
	OrDiscard(l).Info("kept")
	if !bytes.Contains(b.Bytes(), []byte("kept")) {
		t.Fatal("OrDiscard(l) must be l")
	}
}
