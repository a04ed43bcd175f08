package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// One line of results.tsv, written by run.sh for every run of every row:
//
//	id  contender  command  files  wall_s  cpu_s  rss_kib  rss_kind  size_bytes  images  kept  format  notes  status
//
// rss_kind is "proc" (peak RSS of the command and its children, from
// /usr/bin/time -v), "dockerd" (growth of dockerd's peak RSS over its RSS
// before the run) or "na". status is "ok", "failed" or "skipped".
type result struct {
	id, contender, command, files   string
	wall, cpu                       float64
	rssKiB                          int64
	rssKind                         string
	size                            int64
	images, kept, format, notes, ok string
}

const tsvFields = 14

func runReport(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: benchtool report results.tsv")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	var order []string
	rows := map[string][]result{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		fl := strings.Split(sc.Text(), "\t")
		if len(fl) != tsvFields {
			return fmt.Errorf("%s:%d: %d fields, want %d", args[0], n, len(fl), tsvFields)
		}
		r := result{id: fl[0], contender: fl[1], command: fl[2], files: fl[3], rssKind: fl[7],
			images: fl[9], kept: fl[10], format: fl[11], notes: fl[12], ok: fl[13]}
		r.wall, _ = strconv.ParseFloat(fl[4], 64)
		r.cpu, _ = strconv.ParseFloat(fl[5], 64)
		r.rssKiB, _ = strconv.ParseInt(fl[6], 10, 64)
		r.size, _ = strconv.ParseInt(fl[8], 10, 64)
		if _, ok := rows[r.id]; !ok {
			order = append(order, r.id)
		}
		rows[r.id] = append(rows[r.id], r)
	}
	if err := sc.Err(); err != nil {
		return err
	}

	fmt.Println("| # | contender | wall time | CPU time | peak RSS | output size | files | images in output | registry manifest digests kept | output format | notes |")
	fmt.Println("|---|---|--:|--:|--:|--:|--:|:-:|:-:|---|---|")
	for i, id := range order {
		rs := rows[id]
		var ok []result
		for _, r := range rs {
			if r.ok == "ok" {
				ok = append(ok, r)
			}
		}
		last := rs[len(rs)-1]
		if last.ok == "skipped" {
			fmt.Printf("| %d | %s | skipped | | | | | | | | %s |\n", i+1, cell(last.contender), cell(last.notes))
			continue
		}
		if len(ok) == 0 {
			fmt.Printf("| %d | %s | **failed** | | | | | | | | %s |\n", i+1, cell(last.contender), cell(last.notes))
			continue
		}
		last = ok[len(ok)-1]
		wall := median(ok, func(r result) float64 { return r.wall })
		cpu := median(ok, func(r result) float64 { return r.cpu })
		rss := median(ok, func(r result) float64 { return float64(r.rssKiB) })
		size := median(ok, func(r result) float64 { return float64(r.size) })
		runs := ""
		if len(rs) > 1 {
			runs = fmt.Sprintf(" (median of %d)", len(ok))
			if len(ok) < len(rs) {
				runs = fmt.Sprintf(" (median of %d; %d failed)", len(ok), len(rs)-len(ok))
			}
		}
		var rssCell string
		switch last.rssKind {
		case "proc":
			rssCell = fmt.Sprintf("%.0f MiB", rss/1024)
		case "dockerd":
			rssCell = fmt.Sprintf("dockerd +%.0f MiB", rss/1024)
		default:
			rssCell = "n/a"
		}
		fmt.Printf("| %d | %s | %.1f s%s | %.1f s | %s | %.1f MiB | %s | %s | %s | %s | %s |\n",
			i+1, cell(last.contender), wall, runs, cpu, rssCell, size/(1<<20), last.files,
			last.images, last.kept, cell(last.format), cell(last.notes))
	}
	fmt.Println()
	fmt.Println("Commands measured (`$REG` is the registry, `$REFS` the image references):")
	fmt.Println()
	for i, id := range order {
		if c := rows[id][0].command; c != "-" {
			fmt.Printf("%d. `%s`\n", i+1, c)
		}
	}
	return nil
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
