// Command benchtool is the Go half of `make bench` (bench/run.sh does the
// rest): it generates and pushes the benchmark's images, inspects what each
// contender wrote, and renders the results as a Markdown table.
//
//	benchtool freeport
//	benchtool gen --set k3s|big|odd --registry 127.0.0.1:PORT [size flags] --work DIR --out refs-SET.json
//	benchtool refs [--big | --retag | --blobs STORAGE | --sh] refs-SET.json
//	benchtool reqs --log registry.log --from LINE --refs refs-SET.json
//	benchtool inspect --expect refs-SET.json [--big] PATH...
//	benchtool report --results results.tsv --facts facts.tsv --json latest.json
//	benchtool fdwatch --out FILE -- CMD [ARG...]
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
	case "reqs":
		err = runReqs(os.Args[2:])
	case "inspect":
		err = runInspect(os.Args[2:])
	case "report":
		err = runReport(os.Args[2:])
	case "fdwatch":
		err = runFdwatch(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchtool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchtool freeport | gen FLAGS | refs [--big | --retag | --blobs STORAGE | --sh] refs.json | reqs FLAGS | inspect --expect refs.json [--big] PATH... | report FLAGS | fdwatch --out FILE -- CMD...")
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
