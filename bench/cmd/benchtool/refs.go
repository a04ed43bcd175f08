package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

func readRefs(path string) (*Refs, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var refs Refs
	if err := json.Unmarshal(b, &refs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &refs, nil
}

// runRefs prints, for run.sh, from refs-SET.json: the spec's references one
// a line; with --big the big2x reference; with --retag the retagged
// references; with --blobs STORAGE the storage paths of the set's distinct
// blobs (for the floor); with --sh shell assignments.
func runRefs(args []string) error {
	fs := flag.NewFlagSet("refs", flag.ContinueOnError)
	big := fs.Bool("big", false, "print the big2x reference")
	retag := fs.Bool("retag", false, "print the retagged references")
	blobs := fs.String("blobs", "", "print the blob files of the set under this registry storage root")
	sh := fs.Bool("sh", false, "print NREFS= DISTINCT_BYTES= NBLOBS= BUMP_FROM= BUMP_TO= BUMP_NEW= BUMP_NEW_BYTES=")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: benchtool refs [--big | --retag | --blobs STORAGE | --sh] refs.json")
	}
	refs, err := readRefs(fs.Arg(0))
	if err != nil {
		return err
	}
	switch {
	case *big:
		if refs.Big != nil {
			fmt.Println(refs.Big.Ref)
		}
	case *retag:
		for _, r := range refs.Retag {
			fmt.Println(r)
		}
	case *blobs != "":
		for _, b := range refs.Blobs {
			hex := strings.TrimPrefix(b.Digest, "sha256:")
			fmt.Println(filepath.Join(*blobs, "docker/registry/v2/blobs/sha256", hex[:2], hex, "data"))
		}
	case *sh:
		var from, to string
		nb, nbytes := 0, int64(0)
		if refs.Bump != nil {
			from, to, nb, nbytes = refs.Bump.From, refs.Bump.To, len(refs.Bump.NewBlobs), refs.Bump.NewBytes
		}
		fmt.Printf("NREFS=%d DISTINCT_BYTES=%d NBLOBS=%d BUMP_FROM=%q BUMP_TO=%q BUMP_NEW=%d BUMP_NEW_BYTES=%d\n",
			len(refs.Images), refs.DistinctBytes, len(refs.Blobs), from, to, nb, nbytes)
	default:
		for _, p := range refs.Images {
			fmt.Println(p.Ref)
		}
	}
	return nil
}

var accessRE = regexp.MustCompile(`"(GET|HEAD|PUT|POST|PATCH|DELETE) (/v2/[^ ?"]*)[^"]* HTTP/[0-9.]+"`)

// runReqs counts the registry's access-log lines from line --from on (1 is
// the first line), and prints shell assignments:
//
//	REQ_ALL       every /v2/ request
//	REQ_MANIFEST  GET or HEAD of /v2/<repo>/manifests/<ref>
//	REQ_BLOB_GET  GET of /v2/<repo>/blobs/<digest>
//	REQ_BLOB_DISTINCT  distinct digests among them
//	REQ_BLOB_CFG  those of them whose digest is a config blob of the set
//	REQ_BLOB_NEW  those of them whose digest is in the bump's new blobs
//	REQ_BLOB_HEAD HEAD of /v2/<repo>/blobs/<digest>
func runReqs(args []string) error {
	fs := flag.NewFlagSet("reqs", flag.ContinueOnError)
	logf := fs.String("log", "", "registry log")
	from := fs.Int("from", 1, "first line to count")
	refsPath := fs.String("refs", "", "refs-SET.json (config and bump digests)")
	dump := fs.String("dump", "", "also write the counted request lines to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	refs, err := readRefs(*refsPath)
	if err != nil {
		return err
	}
	configs, bumped := map[string]bool{}, map[string]bool{}
	for _, c := range refs.Configs {
		configs[c] = true
	}
	if refs.Bump != nil {
		for _, d := range refs.Bump.NewBlobs {
			bumped[d] = true
		}
	}
	f, err := os.Open(*logf)
	if err != nil {
		return err
	}
	defer f.Close()
	var all, man, get, cfg, newb, head int
	distinct := map[string]bool{}
	var dumped []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if n < *from {
			continue
		}
		m := accessRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		all++
		dumped = append(dumped, m[1]+" "+m[2])
		method, p := m[1], m[2]
		switch {
		case strings.Contains(p, "/manifests/") && (method == "GET" || method == "HEAD"):
			man++
		case strings.Contains(p, "/blobs/sha256:") && method == "GET":
			get++
			d := p[strings.LastIndex(p, "/")+1:]
			distinct[d] = true
			if configs[d] {
				cfg++
			}
			if bumped[d] {
				newb++
			}
		case strings.Contains(p, "/blobs/sha256:") && method == "HEAD":
			head++
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if *dump != "" {
		if err := os.WriteFile(*dump, []byte(strings.Join(append(dumped, ""), "\n")), 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("REQ_ALL=%d REQ_MANIFEST=%d REQ_BLOB_GET=%d REQ_BLOB_DISTINCT=%d REQ_BLOB_CFG=%d REQ_BLOB_NEW=%d REQ_BLOB_HEAD=%d\n",
		all, man, get, len(distinct), cfg, newb, head)
	return nil
}
