package main

import "fmt"

// insideTargets are issue 20 part 3's: the inside of the gap (push, serve,
// a node's import), from bench/inside.sh's rows.
func insideTargets(set string, get func(string) *Row, f map[string]string) []Target {
	var ts []Target
	add := func(name string, known, pass, info bool, format string, a ...any) {
		ts = append(ts, Target{Set: set, Name: name, Value: fmt.Sprintf(format, a...), Known: known, Pass: known && pass, Info: info})
	}
	push, push2 := get("ab-push"), get("ab-push2")
	if push2 != nil && set == "k3s" {
		add("second push of an unchanged archive <= 0.25 s", true, push2.WallS <= 0.25, false, "%.2f s (first push %.2f s; headers only: %s)",
			push2.WallS, wall(push), map[string]string{"1": "yes", "0": "no", "": "?"}[f["push2_headers_only"]])
	}
	for _, p := range []struct{ id, name string }{{"cr-copy", "crane copy registry to registry"}, {"sk-push", "skopeo copy docker-archive: per image"}} {
		if r := get(p.id); r != nil && push != nil {
			add(fmt.Sprintf("push ÷ %s (for reading)", p.name), true, true, true, "%.2f (%.2f s vs %.2f s)", push.WallS/r.WallS, push.WallS, r.WallS)
		}
	}
	if s, r := get("serve-pull"), get("reg-pull"); s != nil && r != nil {
		add("crane pull from serve ÷ from docker-registry (for reading)", true, true, true, "%.2f (%.2f s vs %.2f s; serve peak RSS %.0f MiB)", s.WallS/r.WallS, s.WallS, r.WallS, float64(s.RSSKiB)/1024)
	}
	for _, fm := range []string{"tar", "tar.gz", "tar.zst"} {
		if r := get("import-" + fm); r != nil {
			add(fmt.Sprintf("k3s import (containerd 2.x) of the .%s (for reading)", fm), true, true, true, "%.2f s (%.1f MiB)", r.WallS, mib(r.Bytes))
		}
	}
	return ts
}

func wall(r *Row) float64 {
	if r == nil {
		return 0
	}
	return r.WallS
}
