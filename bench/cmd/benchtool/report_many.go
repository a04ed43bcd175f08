package main

import (
	"fmt"
	"strconv"
)

// manyFDBound is the stated bound on the open file descriptors of one
// airgap-bundle process building hundreds of images with the default
// --jobs 8 (bench/README.md, "The many set"): 3 standard streams and a few
// of the Go runtime's, per download in flight a partial file and a
// connection, at most 16 repositories open for manifests, two archives
// and the blobs they read, the cache's and the output directory's locks.
const manyFDBound = 64

// manyTargets are issue 20 part 2's, for the many set (bench/many.sh):
// lock and build grow linearly from the first 30 images to all of them,
// memory and file descriptors stay bounded, the progress output stays
// readable, and lock --check and verify ask the registry nothing.
func manyTargets(set string, get func(string) *Row, f map[string]string) []Target {
	var ts []Target
	add := func(name string, known, pass bool, format string, a ...any) {
		ts = append(ts, Target{Set: set, Name: name, Value: fmt.Sprintf(format, a...), Known: known, Pass: known && pass})
	}
	num := func(k string) float64 { v, _ := strconv.ParseFloat(f[k], 64); return v }
	small, all := f["small"], f["refs"]
	ns, na := num("small"), num("refs")
	if ns == 0 || na == 0 {
		return nil
	}
	// 1. linear: time per image at all the images within 1.2x of at 30
	for _, kind := range []struct{ id, what string }{{"lock", "lock"}, {"build", "build (cold cache)"}} {
		name := fmt.Sprintf("%s: time per image at %s images <= 1.2 × at %s", kind.what, all, small)
		a, b := get(kind.id+"-"+small), get(kind.id+"-"+all)
		if a == nil || b == nil || a.WallS <= 0 {
			add(name, false, false, "not measured")
			continue
		}
		pa, pb := a.WallS/ns, b.WallS/na
		q := pb / pa
		extra := ""
		if kind.id == "build" {
			// the first 30 images carry the shared bases whole: more
			// bytes and blobs per image than all of them do
			ga, gb := num("req_build_"+small+"_blob_get"), num("req_build_"+all+"_blob_get")
			extra = fmt.Sprintf("; %.2f vs %.2f MiB of archive per image; %.0f vs %.0f blob GETs, %.2f vs %.2f ms per blob",
				mib(b.Bytes)/na, mib(a.Bytes)/ns, gb, ga, 1000*b.WallS/max(gb, 1), 1000*a.WallS/max(ga, 1))
		} else {
			extra = fmt.Sprintf("; %.1f vs %.1f registry requests per image",
				num("req_lock_"+all+"_all")/na, num("req_lock_"+small+"_all")/ns)
		}
		add(name, true, q <= 1.2, "%.2f (%.1f ms per image: %.2f s for %s; %.1f ms: %.2f s for %s%s)",
			q, 1000*pb, b.WallS, all, 1000*pa, a.WallS, small, extra)
	}
	// 2. memory at all the images
	for _, id := range []string{"lock-" + all, "build-" + all, "build-first-" + all} {
		name := fmt.Sprintf("%s peak RSS < 128 MiB", id)
		if r := get(id); r != nil {
			add(name, true, r.RSSKiB < 128<<10, "%.1f MiB", float64(r.RSSKiB)/1024)
		} else {
			add(name, false, false, "not measured")
		}
	}
	// 3. file descriptors: no growth with the images, under the bound
	if _, ok := f["fd_peak_build-"+all]; ok {
		pa, pb := num("fd_peak_build-"+small), num("fd_peak_build-"+all)
		add(fmt.Sprintf("build: open fds bounded: peak at %s images <= %d and <= the peak at %s + 8", all, manyFDBound, small), true,
			pb <= manyFDBound && pb <= pa+8,
			"%.0f at %s images (%s), %.0f at %s; fd table (a high-water mark) %s → %s and %s → %s; %s and %s samples (every 5 ms)",
			pb, all, f["fd_kinds_build-"+all], pa, small,
			f["fd_table_start_build-"+all], f["fd_table_build-"+all], f["fd_table_start_build-"+small], f["fd_table_build-"+small],
			f["fd_samples_build-"+all], f["fd_samples_build-"+small])
		add(fmt.Sprintf("lock: open fds at %s images (for reading)", all), true, true, "%s (%s), at %s: %s",
			f["fd_peak_lock-"+all], f["fd_kinds_lock-"+all], small, f["fd_peak_lock-"+small])
		ts[len(ts)-1].Info = true
		if v, ok := f["fd_peak_build-first-"+all]; ok {
			add(fmt.Sprintf("build that locks first: open fds at %s images <= %d", all, manyFDBound), true, num("fd_peak_build-first-"+all) <= manyFDBound,
				"%s (%s)", v, f["fd_kinds_build-first-"+all])
		}
	}
	// 4. progress: CI lines per second (one group), the terminal's redrawn area
	for _, id := range []string{"lock-" + all, "build-" + all} {
		if _, ok := f["ci_lines_"+id]; !ok {
			continue
		}
		// a task's start and end lines come once each whatever it
		// lasts; the rate is of the lines in between
		lines, tasks, running, wall := num("ci_lines_"+id), num("ci_tasks_"+id), num("ci_running_"+id), num("ci_wall_"+id)
		rate := 0.0
		if wall > 0 {
			rate = running / wall
		}
		add(fmt.Sprintf("%s: CI progress lines while running < 1 per second per group", id), wall > 0, rate < 1,
			"%.2f per second (%.0f lines in %.1f s, 1 group: %.0f tasks' start and end lines, %.0f while running)", rate, lines, wall, tasks, running)
	}
	if _, ok := f["tty_most_lines"]; ok {
		most := num("tty_most_lines")
		add(fmt.Sprintf("terminal: the redrawn progress area of a build of %s groups <= 12 lines", f["tty_groups"]), num("tty_redraws") > 0, most <= 12,
			"%.0f lines at most over %s redraws (a %s-row pty, script(1); the first %s images as %s groups, cold)", most, f["tty_redraws"], f["tty_rows"], small, f["tty_groups"])
	}
	// 5. no registry request where none is needed
	for _, c := range []struct{ key, what string }{{"check", "lock --check"}, {"verify", "verify SPEC"}} {
		if _, ok := f["req_"+c.key+"_all"]; !ok {
			continue
		}
		add(fmt.Sprintf("%s of %s images: 0 registry requests", c.what, all), f["req_"+c.key+"_rc"] == "0", f["req_"+c.key+"_all"] == "0",
			"%s requests (exit %s)", f["req_"+c.key+"_all"], f["req_"+c.key+"_rc"])
	}
	return ts
}
