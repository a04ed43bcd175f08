package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// One line of results.tsv, written by run.sh for every run of every row:
//
//	set  id  contender  command  files  wall_s  cpu_s  rss_kib  rss_kind  size_bytes  fs_out_bytes  images  kept  format  notes  status
//
// rss_kind is "proc" (peak RSS of the largest process of the command, from
// /usr/bin/time -v), "dockerd" (growth of dockerd's peak RSS over its RSS
// before the run) or "na". status is "ok", "failed" or "skipped".
//
// facts.tsv holds "set  key  value" lines: request counts, archive hashes,
// the sets' distinct blob bytes (see run.sh).
type result struct {
	set, id, contender, command, files string
	wall, cpu                          float64
	rssKiB                             int64
	rssKind                            string
	size, fsOut                        int64
	images, kept, format, notes, ok    string
}

const tsvFields = 16

// Row is one row of the report (medians over the successful runs).
type Row struct {
	Set       string  `json:"set"`
	ID        string  `json:"id"`
	Tool      string  `json:"tool"`
	Command   string  `json:"command"`
	Status    string  `json:"status"`
	Runs      int     `json:"runs"`
	Failed    int     `json:"failedRuns"`
	WallS     float64 `json:"wallSeconds"`
	CPUS      float64 `json:"cpuSeconds"`
	RSSKiB    int64   `json:"peakRssKiB"`
	RSSKind   string  `json:"peakRssKind"`
	Bytes     int64   `json:"outputBytes"`
	FSOut     int64   `json:"fsWriteBytes"`
	Files     string  `json:"files"`
	Images    string  `json:"imagesInOutput"`
	Kept      string  `json:"manifestDigestsKept"`
	Format    string  `json:"format"`
	Notes     string  `json:"notes"`
	ColdRatio float64 `json:"airgapColdOverThis,omitempty"` // airgap-bundle cold wall ÷ this row's wall
}

// Target is one PASS/FAIL line.
type Target struct {
	Set   string `json:"set"`
	Name  string `json:"name"`
	Value string `json:"value"`
	Pass  bool   `json:"pass"`
	Known bool   `json:"measured"` // false: not measured (a row was missing or failed)
	// Info marks a comparison reported for reading, not a target: issue 9
	// makes the floor, not the peers, the target of the big-layer set,
	// where every tool is bound by the disk.
	Info bool `json:"info,omitempty"`
}

func runReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	resultsPath := fs.String("results", "", "results.tsv")
	factsPath := fs.String("facts", "", "facts.tsv")
	jsonPath := fs.String("json", "", "write the report as JSON here too")
	cores := fs.Int("cores", 2, "CPU cores (for the CPU-utilisation target)")
	setsDesc := fs.String("sets", "", "SET=description;... for the headings")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *resultsPath == "" || *factsPath == "" {
		return errors.New("need --results and --facts")
	}
	all, err := readResults(*resultsPath)
	if err != nil {
		return err
	}
	facts, err := readFacts(*factsPath)
	if err != nil {
		return err
	}
	desc := map[string]string{}
	for _, kv := range strings.Split(*setsDesc, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			desc[k] = v
		}
	}

	var sets []string
	rowsBySet := map[string][]*Row{}
	for _, r := range aggregate(all) {
		if _, ok := rowsBySet[r.Set]; !ok {
			sets = append(sets, r.Set)
		}
		rowsBySet[r.Set] = append(rowsBySet[r.Set], r)
	}
	var targets []Target
	var rows []*Row
	for _, set := range sets {
		rs := rowsBySet[set]
		get := func(id string) *Row {
			for _, r := range rs {
				if r.ID == id && r.Status == "ok" {
					return r
				}
			}
			return nil
		}
		cold := get("ab-cold")
		if cold != nil {
			for _, r := range rs {
				if r.Status == "ok" && r.WallS > 0 {
					r.ColdRatio = cold.WallS / r.WallS
				}
			}
		}
		distinct, _ := strconv.ParseInt(facts[set]["distinct_bytes"], 10, 64)
		fmt.Printf("## Set `%s`: %s\n\n", set, desc[set])
		fmt.Printf("%s references, %s distinct linux/amd64 blobs (manifests, configs, layers) = %.1f MiB: the bytes every output has to hold.\n\n",
			facts[set]["refs"], facts[set]["blobs"], mib(distinct))
		fmt.Println("| row | wall | CPU | CPU ÷ wall | peak RSS | output | ÷ distinct blobs | written to disk | images | digests kept | format | airgap-bundle cold ÷ this | notes |")
		fmt.Println("|---|--:|--:|--:|--:|--:|--:|--:|:-:|:-:|---|--:|---|")
		for _, r := range rs {
			rows = append(rows, r)
			switch r.Status {
			case "skipped":
				fmt.Printf("| %s | skipped | | | | | | | | | | | %s |\n", cell(r.Tool), cell(r.Notes))
				continue
			case "failed":
				fmt.Printf("| %s | **failed** | | | | | | | | | | | %s |\n", cell(r.Tool), cell(r.Notes))
				continue
			}
			runs := ""
			if r.Runs > 1 || r.Failed > 0 {
				runs = fmt.Sprintf(" (median of %d", r.Runs)
				if r.Failed > 0 {
					runs += fmt.Sprintf("; %d failed", r.Failed)
				}
				runs += ")"
			}
			var rss string
			switch r.RSSKind {
			case "proc":
				rss = fmt.Sprintf("%.0f MiB", float64(r.RSSKiB)/1024)
			case "dockerd":
				rss = fmt.Sprintf("dockerd +%.0f MiB", float64(r.RSSKiB)/1024)
			case "serve":
				rss = fmt.Sprintf("serve %.0f MiB", float64(r.RSSKiB)/1024)
			default:
				rss = "n/a"
			}
			over := "–"
			if distinct > 0 {
				over = fmt.Sprintf("%.3f×", float64(r.Bytes)/float64(distinct))
			}
			written := "–"
			if r.FSOut > 0 {
				written = fmt.Sprintf("%.1f MiB", mib(r.FSOut))
			}
			util := 0.0
			if r.WallS > 0 {
				util = r.CPUS / r.WallS
			}
			ratio := "–"
			if r.ColdRatio > 0 {
				ratio = fmt.Sprintf("%.2f", r.ColdRatio)
			}
			files := ""
			if r.Files != "1" {
				files = fmt.Sprintf(" (%s files)", r.Files)
			}
			fmt.Printf("| %s | %.2f s%s | %.2f s | %.2f | %s | %.1f MiB%s | %s | %s | %s | %s | %s | %s | %s |\n",
				cell(r.Tool), r.WallS, runs, r.CPUS, util, rss, mib(r.Bytes), files, over, written,
				r.Images, r.Kept, cell(r.Format), ratio, cell(r.Notes))
		}
		fmt.Println()
		targets = append(targets, setTargets(set, get, facts[set], distinct, *cores, rs)...)
	}

	// apply's memory is flat: the big set's apply writes about 8 times the
	// k3s set's bytes (2x its big layer against 250 MiB).
	var applies [2]*Row
	for i, set := range []string{"k3s", "big"} {
		for _, r := range rowsBySet[set] {
			if r.ID == "ab-apply" && r.Status == "ok" {
				applies[i] = r
			}
		}
	}
	if a, b := applies[0], applies[1]; a != nil && b != nil && a.RSSKiB > 0 {
		q := float64(b.RSSKiB) / float64(a.RSSKiB)
		targets = append(targets, Target{Set: "big", Name: "apply peak RSS flat: big set's apply ÷ k3s set's <= 1.10", Known: true, Pass: q <= 1.10,
			Value: fmt.Sprintf("%.2f (%.1f MiB writing %.0f MiB vs %.1f MiB writing %.0f MiB)", q, float64(b.RSSKiB)/1024, mib(b.Bytes), float64(a.RSSKiB)/1024, mib(a.Bytes))})
	} else if a != nil || b != nil {
		targets = append(targets, Target{Set: "big", Name: "apply peak RSS flat: big set's apply ÷ k3s set's <= 1.10", Value: "not measured (needs both sets' apply rows)"})
	}

	fmt.Println("## Targets")
	fmt.Println()
	fmt.Println("Reported, never asserted: `make bench` exits 0 whatever they say.")
	fmt.Println()
	fmt.Println("```")
	pass, fail, unknown := 0, 0, 0
	for _, t := range targets {
		word := "FAIL"
		switch {
		case t.Info:
			word = "INFO"
		case !t.Known:
			word, unknown = "N/A ", unknown+1
		case t.Pass:
			word, pass = "PASS", pass+1
		default:
			fail++
		}
		fmt.Printf("%s  %-4s %s: %s\n", word, t.Set, t.Name, t.Value)
	}
	fmt.Println("```")
	fmt.Printf("\n%d PASS, %d FAIL, %d not measured.\n\n", pass, fail, unknown)

	fmt.Println("Commands (`$REFS`: the set's references):")
	fmt.Println()
	seen := map[string]bool{}
	for _, r := range rows {
		if r.Command != "-" && r.Command != "" && !seen[r.ID] {
			seen[r.ID] = true
			fmt.Printf("- %s: `%s`\n", r.Tool, r.Command)
		}
	}
	if *jsonPath != "" {
		b, err := json.MarshalIndent(map[string]any{"rows": rows, "targets": targets, "facts": facts}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func setTargets(set string, get func(string) *Row, f map[string]string, distinct int64, cores int, rs []*Row) []Target {
	if set == "many" { // issue 20 part 2: its own rows and targets
		return manyTargets(set, get, f)
	}
	var ts []Target
	add := func(name string, known, pass bool, format string, a ...any) {
		ts = append(ts, Target{Set: set, Name: name, Value: fmt.Sprintf(format, a...), Known: known, Pass: known && pass})
	}
	cold, warm, floor := get("ab-cold"), get("ab-warm"), get("floor")
	// 1. against the fastest of crane and regctl
	var fastest *Row
	for _, id := range []string{"cr-tarball", "regctl"} {
		if r := get(id); r != nil && (fastest == nil || r.WallS < fastest.WallS) {
			fastest = r
		}
	}
	if cold != nil && fastest != nil {
		q := cold.WallS / fastest.WallS
		add("cold build ÷ fastest of crane/regctl <= 1.0", true, q <= 1.0, "%.2f (%.2f s vs %s %.2f s)", q, cold.WallS, fastest.Tool, fastest.WallS)
		if set == "big" {
			// One big layer: every tool is bound by the disk, and the
			// floor (below) is the target; crane and regctl fsync nothing.
			ts[len(ts)-1].Info = true
			ts[len(ts)-1].Name = "cold build ÷ fastest of crane/regctl (for reading: on one big layer the floor is the target)"
		}
	} else {
		add("cold build ÷ fastest of crane/regctl <= 1.0", false, false, "not measured")
	}
	// issue 20: the one-shot build without a cache, on every set
	if nc := get("ab-nocache"); nc != nil && fastest != nil {
		q := nc.WallS / fastest.WallS
		add("cold --no-cache build ÷ fastest of crane/regctl <= 1.0", true, q <= 1.0, "%.2f (%.2f s vs %s %.2f s)", q, nc.WallS, fastest.Tool, fastest.WallS)
	} else if nc != nil {
		add("cold --no-cache build ÷ fastest of crane/regctl <= 1.0", false, false, "not measured (no crane or regctl row)")
	}
	if nc := get("ab-nocache"); nc != nil && floor != nil {
		q := nc.WallS / floor.WallS
		add("cold --no-cache build ÷ floor <= 1.5", true, q <= 1.5, "%.2f (%.2f s vs floor %.2f s; %s written)", q, nc.WallS, floor.WallS, mibs(nc.FSOut))
	}
	if set == "k3s" {
		for _, p := range []struct {
			id   string
			min  float64
			name string
		}{{"skopeo", 10, "skopeo"}, {"docker", 15, "docker pull+save"}} {
			name := fmt.Sprintf("%s ÷ cold build >= %.0f", p.name, p.min)
			if r := get(p.id); r != nil && cold != nil {
				q := r.WallS / cold.WallS
				add(name, true, q >= p.min, "%.1f× (%.2f s vs %.2f s)", q, r.WallS, cold.WallS)
			} else {
				add(name, false, false, "not measured")
			}
		}
	}
	// 2. against the floor
	for _, p := range []struct {
		r    *Row
		max  float64
		name string
	}{{cold, 2.0, "cold build"}, {warm, 1.3, "warm rebuild"}} {
		name := fmt.Sprintf("%s ÷ floor <= %.1f", p.name, p.max)
		if p.r != nil && floor != nil {
			q := p.r.WallS / floor.WallS
			add(name, true, q <= p.max, "%.2f (%.2f s vs floor %.2f s)", q, p.r.WallS, floor.WallS)
		} else {
			add(name, false, false, "not measured")
		}
	}
	// 3. output size
	if cold != nil && distinct > 0 {
		q := float64(cold.Bytes) / float64(distinct)
		add("output ÷ distinct blob bytes <= 1.01", true, q <= 1.01, "%.4f (%d B archive, %d B of blobs)", q, cold.Bytes, distinct)
	}
	// 4. memory
	maxRSS, maxID := int64(0), ""
	for _, r := range rs {
		if r.Status == "ok" && r.RSSKind == "proc" && strings.HasPrefix(r.ID, "ab-") && r.RSSKiB > maxRSS {
			maxRSS, maxID = r.RSSKiB, r.Tool
		}
	}
	if maxID != "" {
		add("airgap-bundle peak RSS < 64 MiB (every airgap-bundle row)", true, maxRSS < 64<<10, "max %.1f MiB (%s)", float64(maxRSS)/1024, maxID)
	}
	if set == "big" {
		if r2 := get("ab-2x"); r2 != nil && cold != nil {
			q := float64(r2.RSSKiB) / float64(cold.RSSKiB)
			add("peak RSS flat when the big layer doubles: ratio <= 1.10", true, q <= 1.10, "%.2f (%.1f MiB vs %.1f MiB)", q, float64(r2.RSSKiB)/1024, float64(cold.RSSKiB)/1024)
		} else {
			add("peak RSS flat when the big layer doubles: ratio <= 1.10", false, false, "not measured")
		}
	}
	// 5. registry requests
	if v, ok := f["req_warm_all"]; ok {
		add("warm rebuild makes no registry request", true, v == "0", "%s requests", v)
	}
	if set == "k3s" {
		if _, ok := f["req_bump_blob_get"]; ok {
			add("1-image bump: blob GETs == new blobs of that image", f["req_bump_rc"] == "0",
				f["req_bump_blob_get"] == f["req_bump_expected"] && f["req_bump_blob_new"] == f["req_bump_expected"],
				"%s blob GETs (%s distinct digests), %s of them of new blobs, %s new blobs (build exit %s; %s manifest requests)",
				f["req_bump_blob_get"], f["req_bump_blob_distinct"], f["req_bump_blob_new"], f["req_bump_expected"], f["req_bump_rc"], f["req_bump_manifest"])
		}
		if _, ok := f["req_check_all"]; ok {
			add("lock --check on an unchanged spec: 0 requests", f["req_check_rc"] == "0", f["req_check_all"] == "0",
				"%s requests (exit %s)", f["req_check_all"], f["req_check_rc"])
		}
		if _, ok := f["req_lock_blob_get"]; ok {
			get, _ := strconv.Atoi(f["req_lock_blob_get"])
			cfg, _ := strconv.Atoi(f["req_lock_blob_cfg"])
			add(fmt.Sprintf("lock of %s new tags: manifest requests + config blobs only", f["req_lock_tags"]), f["req_lock_rc"] == "0", get == cfg,
				"%s manifest GET/HEADs, %d blob GETs of which %d config blobs (%s single-manifest images), %d other blob GETs; %s requests in all (exit %s)",
				f["req_lock_manifest"], get, cfg, f["req_lock_singles"], get-cfg, f["req_lock_all"], f["req_lock_rc"])
		}
		for _, ext := range []string{"gz", "zst"} {
			r := get("ab-" + ext)
			if r == nil {
				continue
			}
			u := r.CPUS / r.WallS
			add(fmt.Sprintf(".tar.%s cold build CPU ÷ wall (for reading: the layers are compressed already, so compressing them again is cheap and the build is bound by the registry and the disk)", ext), true,
				true, "%.2f (%.2f s CPU in %.2f s)", u, r.CPUS, r.WallS)
			ts[len(ts)-1].Info = true
			one, _ := strconv.ParseFloat(f["compress_"+ext+"_1"], 64)
			all, _ := strconv.ParseFloat(f["compress_"+ext+"_n"], 64)
			add(fmt.Sprintf(".tar.%s compressor uses every core: MB/s on %d cores ÷ on 1 >= %.1f (0.75 × %d)", ext, cores, 0.75*float64(cores), cores),
				one > 0 && all > 0, all/one >= 0.75*float64(cores),
				"%.2f (%.0f MB/s on 1 core, %.0f MB/s on %d; compressible text, go test -bench Compression)", all/one, one, all, cores)
			v, ok := f[ext+"_identical"]
			add(fmt.Sprintf(".tar.%s: two builds byte-identical", ext), ok, v == "1", "sha256 %s", map[bool]string{true: "equal: " + f[ext+"_sha256"], false: "differs"}[v == "1"])
		}
	}
	ts = append(ts, deltaTargets(set, get, f)...)
	ts = append(ts, insideTargets(set, get, f)...)
	ts = append(ts, partsTargets(set, get, f)...)
	return ts
}

// partsTargets are issue 18's: parts within max-size, each loadable (a
// complete archive), the union whole, little over one archive, and the
// build time with parts close to one archive's.
func partsTargets(set string, get func(string) *Row, f map[string]string) []Target {
	if set != "k3s" || f["parts_count"] == "" {
		return nil
	}
	var ts []Target
	add := func(name string, known, pass bool, format string, a ...any) {
		ts = append(ts, Target{Set: set, Name: name, Value: fmt.Sprintf(format, a...), Known: known, Pass: known && pass})
	}
	num := func(k string) int64 { n, _ := strconv.ParseInt(f[k], 10, 64); return n }
	max, biggest, total, whole := num("parts_max_size"), num("parts_biggest"), num("parts_total"), num("parts_whole")
	add("parts: every part <= max-size (2/5 of the set)", true, biggest <= max, "%s parts, the largest %.1f MiB, max-size %.1f MiB", f["parts_count"], mib(biggest), mib(max))
	add("parts: each part alone is a complete archive (verify)", true, f["parts_each_ok"] == "1", "%s", map[bool]string{true: "verify passes on every part", false: "verify failed (log: k3s.parts-verify.log)"}[f["parts_each_ok"] == "1"])
	if r := get("ab-parts"); r != nil {
		add("parts: their union holds every image, registry digests kept", r.Status == "ok", sameFraction(r.Images) && sameFraction(r.Kept), "images %s, digests kept %s (of the set's references)", r.Images, r.Kept)
	}
	over := float64(total)/float64(max64(whole, 1)) - 1
	add("parts: bytes over one archive <= 10%", whole > 0, over <= 0.10, "%.1f%% (%.1f MiB in parts, %.1f MiB as one archive)", 100*over, mib(total), mib(whole))
	if p, w := get("ab-parts"), get("ab-whole"); p != nil && w != nil && w.WallS > 0 {
		q := p.WallS / w.WallS
		add("parts: build time <= 1.1 × one archive's (warm)", true, q <= 1.1, "%.2f (%.2f s vs %.2f s)", q, p.WallS, w.WallS)
	}
	return ts
}

// sameFraction says whether "a/b" has a == b.
func sameFraction(s string) bool {
	a, b, ok := strings.Cut(s, "/")
	return ok && a == b
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// deltaTargets are issue 17's: the delta's size, what building it
// downloads, and apply against its floor.
func deltaTargets(set string, get func(string) *Row, f map[string]string) []Target {
	var ts []Target
	add := func(name string, known, pass bool, format string, a ...any) {
		ts = append(ts, Target{Set: set, Name: name, Value: fmt.Sprintf(format, a...), Known: known, Pass: known && pass})
	}
	num := func(k string) int64 { n, _ := strconv.ParseInt(f[k], 10, 64); return n }
	if set == "k3s" {
		if _, ok := f["delta_new_bytes"]; ok {
			name := "1-image bump: delta <= 1.05 × the new image's blobs BASE lacks + 1 MiB"
			if _, ok := f["delta_bytes"]; ok && num("delta_new_bytes") > 0 {
				d, n, full := num("delta_bytes"), num("delta_new_bytes"), num("delta_full_bytes")
				limit := 1.05*float64(n) + 1<<20
				add(name, true, float64(d) <= limit, "%.2f MiB (delta archive, delta.json, bundle.lock, SHA256SUMS) for %.2f MiB of new blobs, limit %.2f MiB; %.1f%% of the %.1f MiB archive",
					mib(d), mib(n), limit/(1<<20), 100*float64(d)/float64(full), mib(full))
			} else {
				add(name, false, false, "not measured")
			}
		}
		if _, ok := f["req_since_blob_get"]; ok {
			add("build --since from a cache holding BASE downloads nothing for BASE: blob GETs == new blobs of the bump, manifest requests == the plain bump's",
				f["req_since_rc"] == "0",
				f["req_since_blob_get"] == f["req_bump_expected"] && f["req_since_blob_new"] == f["req_bump_expected"] && f["req_since_manifest"] == f["req_bump_manifest"],
				"%s blob GETs, %s of them of the bump's %s new blobs; %s manifest requests (the plain bump: %s); %s requests in all (exit %s)",
				f["req_since_blob_get"], f["req_since_blob_new"], f["req_bump_expected"], f["req_since_manifest"], f["req_bump_manifest"], f["req_since_all"], f["req_since_rc"])
		}
	}
	apply, floor := get("ab-apply"), get("cat-apply")
	if apply == nil && floor == nil && f["req_since_rc"] == "" {
		return ts
	}
	// apply and its floor run in interleaved pairs; the target is the
	// median of the pairs' own ratios (each pair shares the machine's
	// state), with the rows' medians beside it.
	var pairs []result
	for run := 1; ; run++ {
		v, ok := f[fmt.Sprintf("apply_ratio_run%d", run)]
		if !ok {
			break
		}
		q, _ := strconv.ParseFloat(v, 64)
		pairs = append(pairs, result{wall: q})
	}
	switch {
	case apply != nil && floor != nil && len(pairs) > 0:
		q := median(pairs, func(r result) float64 { return r.wall })
		var each []string
		for _, p := range pairs {
			each = append(each, fmt.Sprintf("%.2f", p.wall))
		}
		add("apply ÷ cat + fsync of the same output bytes <= 1.3", true, q <= 1.3, "%.2f, median of interleaved pairs (%s); rows' medians %.2f s vs %.2f s, %.1f MiB",
			q, strings.Join(each, ", "), apply.WallS, floor.WallS, mib(apply.Bytes))
	case apply != nil && floor != nil:
		q := apply.WallS / floor.WallS
		add("apply ÷ cat + fsync of the same output bytes <= 1.3", true, q <= 1.3, "%.2f (%.2f s vs %.2f s, %.1f MiB)", q, apply.WallS, floor.WallS, mib(apply.Bytes))
	default:
		add("apply ÷ cat + fsync of the same output bytes <= 1.3", false, false, "not measured")
	}
	v, ok := f["apply_identical"]
	add("apply's archive is build's, byte for byte", ok, v == "1", "%s", map[bool]string{true: "identical (cmp)", false: "differs, or apply failed"}[v == "1"])
	return ts
}

// aggregate turns the runs of every (set, id) into one Row, in first-seen order.
func aggregate(all []result) []*Row {
	type key struct{ set, id string }
	var order []key
	byKey := map[key][]result{}
	for _, r := range all {
		k := key{r.set, r.id}
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], r)
	}
	var rows []*Row
	for _, k := range order {
		rs := byKey[k]
		var ok []result
		for _, r := range rs {
			if r.ok == "ok" {
				ok = append(ok, r)
			}
		}
		last := rs[len(rs)-1]
		row := &Row{Set: k.set, ID: k.id, Tool: last.contender, Command: last.command, Status: last.ok, Notes: last.notes, Files: last.files}
		if len(ok) > 0 {
			last = ok[len(ok)-1]
			row.Status, row.Notes, row.Runs, row.Failed = "ok", last.notes, len(ok), len(rs)-len(ok)
			row.WallS = median(ok, func(r result) float64 { return r.wall })
			row.CPUS = median(ok, func(r result) float64 { return r.cpu })
			row.RSSKiB = int64(median(ok, func(r result) float64 { return float64(r.rssKiB) }))
			row.Bytes = int64(median(ok, func(r result) float64 { return float64(r.size) }))
			row.FSOut = int64(median(ok, func(r result) float64 { return float64(r.fsOut) }))
			row.RSSKind, row.Images, row.Kept, row.Format, row.Files = last.rssKind, last.images, last.kept, last.format, last.files
		}
		rows = append(rows, row)
	}
	return rows
}

func readResults(path string) ([]result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var all []result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		fl := strings.Split(sc.Text(), "\t")
		if len(fl) != tsvFields {
			return nil, fmt.Errorf("%s:%d: %d fields, want %d", path, n, len(fl), tsvFields)
		}
		r := result{set: fl[0], id: fl[1], contender: fl[2], command: fl[3], files: fl[4], rssKind: fl[8],
			images: fl[11], kept: fl[12], format: fl[13], notes: fl[14], ok: fl[15]}
		r.wall, _ = strconv.ParseFloat(fl[5], 64)
		r.cpu, _ = strconv.ParseFloat(fl[6], 64)
		r.rssKiB, _ = strconv.ParseInt(fl[7], 10, 64)
		r.size, _ = strconv.ParseInt(fl[9], 10, 64)
		r.fsOut, _ = strconv.ParseInt(fl[10], 10, 64)
		all = append(all, r)
	}
	return all, sc.Err()
}

func readFacts(path string) (map[string]map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	facts := map[string]map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		fl := strings.SplitN(line, "\t", 3)
		if len(fl) != 3 {
			continue
		}
		if facts[fl[0]] == nil {
			facts[fl[0]] = map[string]string{}
		}
		facts[fl[0]][fl[1]] = fl[2]
	}
	return facts, nil
}

func median(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func mibs(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
