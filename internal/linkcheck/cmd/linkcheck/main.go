// Command linkcheck checks the links of the Markdown files it is given
// (paths relative to the current directory, the repository's root) and
// exits 1 when one leads nowhere. make lint runs it over every tracked *.md.
package main

import (
	"fmt"
	"os"

	"github.com/airgap-bundle/airgap-bundle/internal/linkcheck"
)

func main() {
	files := os.Args[1:]
	if len(files) == 0 {
		fmt.Fprintln(os.Stderr, "usage: linkcheck FILE.md...")
		os.Exit(2)
	}
	problems, err := linkcheck.Check(os.DirFS("."), files)
	if err != nil {
		fmt.Fprintln(os.Stderr, "linkcheck:", err)
		os.Exit(2)
	}
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "linkcheck: %d broken links in %d files\n", len(problems), len(files))
		os.Exit(1)
	}
}
