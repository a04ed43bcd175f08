package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/airgap-bundle/airgap-bundle/cache"
	"github.com/airgap-bundle/airgap-bundle/internal/progress"
	"github.com/airgap-bundle/airgap-bundle/serve"
)

type serveFlags struct {
	listen    string
	unpackDir string
	tlsCert   string
	tlsKey    string
}

func newServeCmd(g *globalFlags) *cobra.Command {
	f := &serveFlags{}
	c := &cobra.Command{
		Use:   "serve DIR|ARCHIVE...",
		Short: "Serve archives as a read-only registry (OCI distribution API)",
		Long: fmt.Sprintf(`serve reads each archive once (every blob is hashed and located), then
answers pulls straight from the files: manifests and
indexes by tag and by digest, exactly as stored (the original index of an
image too, even when some of its platforms are not in the archive), blobs
with Range requests, and tags/list. Nothing is extracted and nothing can be
pushed. Repositories are the images' full names, the port's ":" of a
registry host made "_" (the paths push --to-per-host writes):
docker.io/library/busybox:1.36 is pulled as HOST:PORT/docker.io/library/busybox:1.36,
127.0.0.1:5000/bench/multiarch:1.0 as HOST:PORT/127.0.0.1_5000/bench/multiarch:1.0.
As a containerd mirror (hosts.toml), a node asks by the path on the source
registry and names it in ?ns= (library/busybox?ns=docker.io,
bench/multiarch?ns=127.0.0.1:5000).

The archives given are served as one registry: serve BASE_DIR DELTA_DIR
serves a delta (build --since) with the site's archives, a layer a delta
archive leaves out served from the archive that holds it (the start lists
each, with where), a tag the delta moved served as the delta's. serve
refuses to start when an image needs a blob that no archive given holds,
naming each.

A compressed archive (.tar.gz, .tar.zst) is decompressed once into
--unpack-dir (by default the "unpacked" directory of the cache), named by
its sha256, and served from there; the next serve of the same archive finds
it. A directory stands for the archives in it (symlinks to archives too).

An archive changed on disk while served (size or mtime) is no longer served:
its manifests and blobs answer 503 UNAVAILABLE, and the log names it.
Connections time out: idle keep-alive after %v, request headers after %v,
a download whose client takes no 64 KiB in %v (a slow one that keeps
reading is not cut).
Ctrl-C stops the server.`, serve.DefaultIdleTimeout, serve.DefaultReadHeaderTimeout, serve.DefaultWriteStallTimeout),
		Example: `  airgap-bundle serve dist/ --listen 127.0.0.1:5000
  skopeo inspect --tls-verify=false docker://127.0.0.1:5000/docker.io/library/busybox:1.36`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("serve: give a directory or archive files")}
			}
			if (f.tlsCert == "") != (f.tlsKey == "") {
				return usageError{errors.New("serve: --tls-cert and --tls-key go together")}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			return runServe(c, g, f, args)
		},
	}
	c.Flags().StringVar(&f.listen, "listen", "127.0.0.1:5000", "address to listen on")
	c.Flags().StringVar(&f.unpackDir, "unpack-dir", "", "where compressed archives are decompressed to (default: the cache directory's unpacked/)")
	c.Flags().StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM), with --tls-key")
	c.Flags().StringVar(&f.tlsKey, "tls-key", "", "the certificate's private key (PEM)")
	return c
}

func runServe(c *cobra.Command, g *globalFlags, f *serveFlags, args []string) error {
	ctx := c.Context()
	// Loaded before the archives are read (which can take minutes) and
	// before "serving on https://..." is printed: a bad certificate is a
	// failure to start, not a server that answers nothing.
	var tlsConfig *tls.Config
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return usageError{fmt.Errorf("serve: --tls-cert %s --tls-key %s: %w (give a PEM certificate and its PEM private key)", f.tlsCert, f.tlsKey, err)}
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	unpackDir := f.unpackDir
	if unpackDir == "" {
		dir, err := cache.DefaultDir()
		if err != nil {
			return usageError{fmt.Errorf("serve: no cache directory to decompress archives into: %w (use --unpack-dir)", err)}
		}
		unpackDir = filepath.Join(dir, "unpacked")
	}
	reg, archives, err := serve.Open(ctx, args, serve.Options{UnpackDir: unpackDir, Logger: g.logger()})
	if err != nil {
		return err
	}
	defer reg.Close()
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	out := c.ErrOrStderr()
	if !g.quiet {
		for _, a := range archives {
			fmt.Fprintf(out, "%s: %d images, %d blobs\n", a.Path, a.Images, a.Blobs)
			if a.Unpacked != "" {
				fmt.Fprintf(out, "  served from its decompressed copy %s\n", a.Unpacked)
			}
			for _, s := range a.Skipped {
				fmt.Fprintf(out, "  not served: %s\n", s)
			}
			if a.Delta != "" {
				fmt.Fprintf(out, "  a delta archive (%s): it leaves out %d blobs (%s) that BASE holds\n", a.Delta, a.LeftOut, progress.HumanBytes(a.LeftOutBytes))
			}
			for _, b := range a.Borrowed {
				fmt.Fprintf(out, "  %s: blob %s (%s) served from %s\n", b.Image, b.Digest, progress.HumanBytes(b.Size), b.From)
			}
			for _, s := range a.Retagged {
				fmt.Fprintf(out, "  tag %s\n", s)
			}
		}
		repos := reg.Repositories()
		for _, rp := range repos {
			if rp.Path != rp.Name {
				fmt.Fprintf(out, "  %s %v (%s)\n", rp.Path, rp.Tags, rp.Name)
			} else {
				fmt.Fprintf(out, "  %s %v\n", rp.Path, rp.Tags)
			}
		}
		scheme := "http"
		if tlsConfig != nil {
			scheme = "https"
		}
		fmt.Fprintf(out, "serving %d repositories on %s://%s (read-only; Ctrl-C stops)\n", len(repos), scheme, ln.Addr())
	}
	srv := reg.Server()
	srv.TLSConfig = tlsConfig
	done := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			done <- srv.ServeTLS(ln, "", "")
		} else {
			done <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		<-done
		return nil
	}
}
