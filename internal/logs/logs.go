// Package logs holds the one default every library entry point applies to
// its optional *slog.Logger: none given, nothing logged.
package logs

import "log/slog"

// OrDiscard returns l, or a logger that drops everything when l is nil.
func OrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
