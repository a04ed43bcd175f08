// Command benchtool is the Go half of `make bench` (bench/run.sh does the
// rest): it generates and pushes the benchmark's images, inspects what each
// contender wrote, and renders the results as a Markdown table.
//
//	benchtool freeport
//	benchtool gen --registry 127.0.0.1:PORT --images 8 --image-mb 40 --big-mb 512 --work DIR --out refs.json
//	benchtool refs [--big | --sizes] refs.json
//	benchtool inspect --expect refs.json [--big] PATH...
//	benchtool report results.tsv
//
// It is a benchmark helper, not a test: nothing here asserts timings.
package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "freeport":
		err = freePort()
	case "gen":
		err = runGen(os.Args[2:])
	case "refs":
		err = runRefs(os.Args[2:])
	case "inspect":
		err = runInspect(os.Args[2:])
	case "report":
		err = runReport(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchtool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchtool freeport | gen FLAGS | refs [--big | --sizes] refs.json | inspect --expect refs.json [--big] PATH... | report results.tsv")
	os.Exit(2)
}

// freePort prints a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	return nil
}
