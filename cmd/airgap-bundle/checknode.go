package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/airgap-bundle/airgap-bundle/delta"
)

// The containerd socket and namespace of k3s and RKE2 (RKE2 runs its
// containerd at k3s's path).
const (
	k3sContainerdSocket = "/run/k3s/containerd/containerd.sock"
	k8sNamespace        = "k8s.io"
)

// ctrCandidates are where ctr is on a node when it is not in PATH: RKE2
// keeps it in its bin directory, k3s installs a ctr symlink (else `k3s
// ctr` is the same program).
var ctrCandidates = []string{"/var/lib/rancher/rke2/bin/ctr", "/usr/local/bin/ctr"}

type checkNodeFlags struct {
	address   string
	namespace string
	ctr       string
	timeout   time.Duration
}

func newCheckNodeCmd(g *globalFlags) *cobra.Command {
	f := &checkNodeFlags{}
	c := &cobra.Command{
		Use:   "check-node DELTA_DIR [--address SOCK] [--namespace NS]",
		Short: "Tell whether a k3s/RKE2 node holds every layer a delta leaves out, before its archives go into the images directory",
		Long: `check-node asks the node's containerd (through its ctr) which blobs its
content store holds, and compares them with the layers the delta archives
in DELTA_DIR leave out (delta.json's from-base). Run it on the node before
copying the delta archives into its images directory and restarting k3s
or RKE2.

k3s and RKE2 import a delta archive with exit 0 whether or not the node
holds those layers; without them the images are incomplete and pods fail
only when they start. check-node exits 0 when every layer is there, and 1
naming the missing layers and the images they would leave incomplete:
import BASE's archives first, or rebuild the full archives with apply.

Every platform of the delta's archives counts, as k3s imports them all.`,
		Example: `  airgap-bundle check-node /media/usb/delta
  airgap-bundle check-node /media/usb/delta --address /run/containerd/containerd.sock --ctr /usr/bin/ctr`,
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error { return runCheckNode(c, g, f, args[0]) },
	}
	c.Flags().StringVar(&f.address, "address", k3sContainerdSocket, "the node's containerd socket (k3s and RKE2: "+k3sContainerdSocket+")")
	c.Flags().StringVarP(&f.namespace, "namespace", "n", k8sNamespace, "the containerd namespace the node's images are in (k3s, RKE2 and kubelet: k8s.io)")
	c.Flags().StringVar(&f.ctr, "ctr", "", `the ctr command to ask containerd with, e.g. "/usr/bin/ctr" or "k3s ctr" (default: ctr in PATH, then `+strings.Join(ctrCandidates, ", ")+`, then "k3s ctr")`)
	c.Flags().DurationVar(&f.timeout, "timeout", time.Minute, "give up on ctr after this long")
	return c
}

func runCheckNode(c *cobra.Command, g *globalFlags, f *checkNodeFlags, dir string) error {
	argv, err := findCtr(f.ctr)
	if err != nil {
		return err
	}
	// ctr waits 10 s on a socket that is not there; say at once what is wrong.
	if fi, err := os.Stat(f.address); err != nil || fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("check-node: %s is not a containerd socket (is k3s or RKE2 running on this node?): give --address the node's containerd socket (k3s and RKE2: %s, containerd: /run/containerd/containerd.sock)", f.address, k3sContainerdSocket)
	}
	lister := ctrLister{argv: argv, address: f.address, namespace: f.namespace, timeout: f.timeout}
	r, err := delta.CheckNode(c.Context(), dir, lister)
	if err != nil {
		return err
	}
	if g.json {
		if err := g.printJSON(c, checkNodeJSON{Address: f.address, Namespace: f.namespace, OK: r.OK(), NodeReport: r}); err != nil {
			return err
		}
	} else {
		printNodeReport(g, c, f, r)
	}
	if !r.OK() {
		var names []string
		for _, a := range r.Archives {
			for _, img := range a.Incomplete {
				if !slices.Contains(names, img.Name) {
					names = append(names, img.Name)
				}
			}
		}
		what := "the images that use them" // the delta archives could not be read
		if len(names) > 0 {
			what = fmt.Sprintf("%d images (%s)", len(names), strings.Join(names, ", "))
		}
		empty := ""
		if r.Held == 0 {
			// A k3s node always holds something (its pause image): a
			// wrong namespace looks like this too.
			empty = fmt.Sprintf(" (namespace %q holds no content at all: if this node runs k3s or RKE2, its images are in %s)", f.namespace, k8sNamespace)
		}
		return fmt.Errorf("the node lacks %d of the %d layers the delta leaves out%s: k3s or RKE2 would import the delta with exit 0 but leave %s incomplete, and their pods would fail to start. Import BASE's archives on this node first, or rebuild the full archives (airgap-bundle apply %s --base BASE_DIR -o OUT_DIR) and put those in the images directory instead", r.Missing, r.Needed, empty, what, dir)
	}
	return nil
}

type missingBlob struct {
	delta.Blob
	deltas []string
}

type checkNodeJSON struct {
	Address   string `json:"address"`
	Namespace string `json:"namespace"`
	OK        bool   `json:"ok"`
	*delta.NodeReport
}

func printNodeReport(g *globalFlags, c *cobra.Command, f *checkNodeFlags, r *delta.NodeReport) {
	w := g.out(c)
	fmt.Fprintf(w, "containerd %s, namespace %s: %d blobs\n", f.address, f.namespace, r.Held)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DELTA\tFOR\tLAYERS LEFT OUT\tMISSING ON THE NODE")
	for _, a := range r.Archives {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", a.Delta, a.Archive, a.LeftOut, len(a.Missing))
	}
	tw.Flush()
	// Images first (what an operator acts on), then each missing blob
	// once, with the deltas that need it.
	var deltas []string
	var order []digest.Digest
	missing := map[digest.Digest]*missingBlob{}
	for _, a := range r.Archives {
		deltas = append(deltas, a.Delta)
		for _, img := range a.Incomplete {
			fmt.Fprintf(w, "incomplete after importing %s: %s (%s: %d layers missing)\n", a.Delta, img.Name, strings.Join(img.Platforms, ", "), img.Layers)
		}
		if a.ImagesError != "" {
			fmt.Fprintf(w, "%s: %s\n", a.Delta, a.ImagesError)
		}
		for _, b := range a.Missing {
			if missing[b.Digest] == nil {
				order = append(order, b.Digest)
				missing[b.Digest] = &missingBlob{Blob: b}
			}
			missing[b.Digest].deltas = append(missing[b.Digest].deltas, a.Delta)
		}
	}
	for _, d := range order {
		m := missing[d]
		fmt.Fprintf(w, "missing: %s (%d bytes, in BASE's %s; for %s)\n", d, m.Size, m.Where, strings.Join(m.deltas, ", "))
	}
	switch {
	case len(r.Archives) == 0:
		fmt.Fprintln(w, "the delta changes no archive: there is nothing to put on the node")
	case r.OK():
		fmt.Fprintf(w, "the node holds all %d layers the delta leaves out: %s can go into its images directory (k3s: /var/lib/rancher/k3s/agent/images/, RKE2: /var/lib/rancher/rke2/agent/images/), beside BASE's archives\n", r.Needed, strings.Join(deltas, ", "))
	}
}

// findCtr is the ctr command: --ctr as given (split on spaces, for "k3s
// ctr"), else the first ctr found.
func findCtr(flag string) ([]string, error) {
	if flag != "" {
		argv := strings.Fields(flag)
		if len(argv) == 0 {
			return nil, usageError{errors.New("check-node: --ctr is empty")}
		}
		return argv, nil
	}
	if p, err := exec.LookPath("ctr"); err == nil {
		return []string{p}, nil
	}
	for _, p := range ctrCandidates {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return []string{p}, nil
		}
	}
	if p, err := exec.LookPath("k3s"); err == nil {
		return []string{p, "ctr"}, nil
	}
	return nil, usageError{fmt.Errorf("check-node: no ctr in PATH, at %s, nor k3s to run k3s ctr: give --ctr the ctr of the node's containerd", strings.Join(ctrCandidates, " or "))}
}

// ctrLister lists a containerd content store with `ctr content ls -q`.
type ctrLister struct {
	argv               []string
	address, namespace string
	timeout            time.Duration
}

func (l ctrLister) ListContent(ctx context.Context) ([]digest.Digest, error) {
	if l.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.timeout)
		defer cancel()
	}
	args := append(append([]string{}, l.argv[1:]...), "--address", l.address, "--namespace", l.namespace, "content", "ls", "--quiet")
	cmd := exec.CommandContext(ctx, l.argv[0], args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		hint := ""
		switch {
		case errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist):
			hint = ": give --ctr the ctr of the node's containerd"
		case strings.Contains(msg, "permission denied"):
			hint = ": run check-node as root (the containerd socket is root's)"
		case ctx.Err() != nil:
			hint = fmt.Sprintf(": no answer in %s (--timeout)", l.timeout)
		}
		return nil, fmt.Errorf("check-node: %s: %w%s%s", strings.Join(cmd.Args, " "), err, prefixed(msg), hint)
	}
	var out []digest.Digest
	for _, line := range strings.Split(stdout.String(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		d, err := digest.Parse(line)
		if err != nil {
			return nil, fmt.Errorf("check-node: %s printed %q, not a digest: is it containerd's ctr?", strings.Join(cmd.Args, " "), line)
		}
		out = append(out, d)
	}
	return out, nil
}

func prefixed(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}
