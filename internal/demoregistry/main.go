// Command demoregistry is the registry behind `make demo`: an in-memory,
// plain-HTTP, loopback-only OCI registry (go-containerregistry's
// pkg/registry) seeded at start-up with a few small images built from the
// files under testdata/demo/.
//
// The images are deterministic (sorted tar entries, uid/gid 0, fixed mtimes
// and modes, gzip without name or timestamp from the klauspost/compress
// version go.mod pins, fixed config creation times), so their digests are
// the same on every machine and can be pinned in examples/demo/bundle.lock.
//
//	demo-registry [-addr 127.0.0.1:5959] [-data testdata/demo]   serve
//	demo-registry -list [-data testdata/demo]                    print images and digests
//	demo-registry -probe 127.0.0.1:5959                          exit 0 if a registry answers there
//
// Serving, it prints one line per seeded image and then "ready" on stdout,
// and logs every request on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const defaultAddr = "127.0.0.1:5959"

func main() {
	addr := flag.String("addr", defaultAddr, "loopback host:port to listen on (port 0: any free port)")
	data := flag.String("data", "testdata/demo", "directory of the demo image files")
	list := flag.Bool("list", false, "print the images and their digests, then exit (no server)")
	probe := flag.String("probe", "", "check whether a registry answers GET /v2/ at this host:port; exit 0 if so, 1 if not")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: demo-registry [-addr HOST:PORT] [-data DIR] | -list | -probe HOST:PORT\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	log.SetFlags(0)
	log.SetPrefix("demo-registry: ")

	switch {
	case *probe != "":
		if err := probeRegistry(*probe, time.Second); err != nil {
			fmt.Fprintf(os.Stderr, "demo-registry: %v\n", err)
			os.Exit(1)
		}
	case *list:
		imgs, err := Images(*data)
		if err != nil {
			log.Fatal(err)
		}
		for _, im := range imgs {
			fmt.Println(im)
		}
	default:
		if err := serve(*addr, *data); err != nil {
			log.Fatal(err)
		}
	}
}

func serve(addr, data string) error {
	s, err := Start(addr, data, os.Stderr)
	if err != nil {
		return err
	}
	for _, im := range s.Images {
		fmt.Printf("seeded  %s/%s\n", s.Addr, im)
	}
	fmt.Printf("ready   http://%s/v2/ (plain HTTP, loopback only; stop with SIGTERM or Ctrl-C)\n", s.Addr)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig:
	case err := <-s.done:
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.Close(ctx)
}

// Server is a running, seeded demo registry.
type Server struct {
	Addr   string // host:port it listens on
	Images []Image
	srv    *http.Server
	done   chan error
}

// Start listens on addr (which must be a loopback address), seeds an empty
// in-memory registry with Images(data) and serves it. Requests made after
// seeding are logged to logw (nil: discarded).
func Start(addr, data string, logw io.Writer) (*Server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("-addr %q: the demo registry serves plain HTTP without authentication, so it only listens on a loopback address (127.0.0.1)", addr)
	}
	imgs, err := Images(data)
	if err != nil {
		return nil, err
	}
	// Bind before seeding, so a busy port fails at once.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("cannot listen on %s: the port is already in use (is another demo registry still running? find it with `ss -ltnp 'sport = :%s'` or `lsof -i :%s`)", addr, portOf(addr), portOf(addr))
		}
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	if logw == nil {
		logw = io.Discard
	}
	gate := &gatedWriter{w: logw}
	h := registry.New(registry.Logger(log.New(gate, "registry: ", log.LstdFlags)))
	if err := seed(context.Background(), h, imgs); err != nil {
		ln.Close()
		return nil, err
	}
	gate.open.Store(true)

	s := &Server{
		Addr:   ln.Addr().String(),
		Images: imgs,
		srv:    &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second},
		done:   make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// Close stops the server.
func (s *Server) Close(ctx context.Context) error { return s.srv.Shutdown(ctx) }

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// gatedWriter drops everything until open, so that seeding (which goes
// through the same handler) does not appear in the request log.
type gatedWriter struct {
	open atomic.Bool
	w    io.Writer
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	if !g.open.Load() {
		return len(p), nil
	}
	return g.w.Write(p)
}

// seed pushes every image into the registry handler h in-process: nothing
// goes over the network, and the listener serves only once it is complete.
func seed(ctx context.Context, h http.Handler, imgs []Image) error {
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(handlerTransport{h})}
	for _, im := range imgs {
		// The host is never dialled: handlerTransport answers every request.
		ref, err := name.ParseReference("seed.invalid/"+im.Ref, name.StrictValidation, name.Insecure)
		if err != nil {
			return fmt.Errorf("seeding %s: %w", im.Ref, err)
		}
		switch o := im.Object.(type) {
		case v1.ImageIndex:
			err = remote.WriteIndex(ref, o, opts...)
		case v1.Image:
			err = remote.Write(ref, o, opts...)
		default:
			err = fmt.Errorf("%T is neither an image nor an index", o)
		}
		if err != nil {
			return fmt.Errorf("seeding %s: %w", im.Ref, err)
		}
		got, err := remote.Head(ref, opts...)
		if err != nil {
			return fmt.Errorf("seeding %s: checking: %w", im.Ref, err)
		}
		if got.Digest.String() != im.Digest {
			return fmt.Errorf("seeding %s: registry serves %s, pushed %s", im.Ref, got.Digest, im.Digest)
		}
	}
	return nil
}

// handlerTransport is an http.RoundTripper that serves requests with an
// http.Handler in the same process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil {
		req.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// probeRegistry returns nil when GET http://addr/v2/ answers 200 with a
// registry API header.
func probeRegistry(addr string, timeout time.Duration) error {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: nil}}
	resp, err := c.Get("http://" + addr + "/v2/")
	if err != nil {
		return fmt.Errorf("no registry at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answers GET /v2/ with %s, not 200", addr, resp.Status)
	}
	return nil
}
