package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/airgap-bundle/airgap-bundle/archive"
)

func newJoinCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "join ARCHIVE...",
		Short: "Join an archive cut into chunks (split-oversize) and check it",
		Long: `join writes ARCHIVE from its chunks ARCHIVE.chunk-1-of-K ... beside it,
in order, checks the result against ARCHIVE.sha256 and puts it in place
(the chunks stay). A group with split-oversize = true cuts the archive of
an image larger than its max-size into such chunks; a chunk is no archive,
the joined file is. The same by hand:

  cat ARCHIVE.chunk-1-of-3 ARCHIVE.chunk-2-of-3 ARCHIVE.chunk-3-of-3 > ARCHIVE
  sha256sum -c ARCHIVE.sha256`,
		Example: `  airgap-bundle join /media/usb/core.part-3-of-3.tar.zst`,
		Args:    minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			for _, p := range args {
				sum, err := archive.Join(c.Context(), p)
				if err != nil {
					return err
				}
				if !g.json {
					fmt.Fprintf(g.out(c), "%s: joined, sha256 %s\n", p, sum)
				}
			}
			return nil
		},
	}
}
