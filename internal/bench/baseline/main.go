// Command baseline is bare goproxy interception, the floor `make bench`
// measures countersign against (SPEC 11): goproxy's MITM with the countersign
// CA (ECDSA P-256), the countersign leaf cache as its certificate store, an
// upstream pool sized for the load, and upstream connections kept alive
// (goproxy passes the client's Connection: close on, which would cost one
// upstream handshake per client connection). No policy, no audit, no
// classification: only what any intercepting proxy has to do.
//
// It runs as its own process so that the harness can read its CPU time and
// memory from /proc, exactly as it does for countersign and mitmdump. When
// it listens it prints "baseline: proxy on ADDR" on stderr; it stops on
// SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/countersign/countersign/internal/mitm"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "proxy listen address")
	caCert := fs.String("ca-cert", "", "interception CA certificate (PEM)")
	caKey := fs.String("ca-key", "", "interception CA key (PEM, mode 0600)")
	upstreamCA := fs.String("upstream-ca", "", "PEM roots that verify the upstream")
	upstream := fs.String("upstream", "", "host:port every request is sent to, whatever its host (like upstream.resolve)")
	pool := fs.Int("pool", 256, "idle upstream connections kept per host")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *caCert == "" || *caKey == "" || *upstreamCA == "" || *upstream == "" {
		return errors.New("-ca-cert, -ca-key, -upstream-ca and -upstream are required")
	}
	ca, err := mitm.Load(*caCert, *caKey)
	if err != nil {
		return err
	}
	pem, err := os.ReadFile(*upstreamCA)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s holds no PEM certificate", *upstreamCA)
	}

	gp := goproxy.NewProxyHttpServer()
	gp.Logger = discardLogger{}
	gp.CertStore = mitm.NewIssuer(ca, mitm.IssuerOptions{})
	tlsCert := ca.TLSCertificate()
	gp.OnRequest().HandleConnect(goproxy.FuncHttpsHandler(func(h string, _ *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
		return &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: goproxy.TLSConfigFromCA(&tlsCert)}, h
	}))
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	gp.Tr = &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		MaxIdleConns:        4 * *pool,
		MaxIdleConnsPerHost: *pool,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, *upstream)
		},
	}
	// Keep the upstream hop alive whatever the client said (SPEC 11: a
	// tuned baseline).
	gp.OnRequest().DoFunc(func(r *http.Request, _ *goproxy.ProxyCtx) (*http.Request, *http.Response) {
		r.Close = false
		return r, nil
	})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: gp, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stderr, "baseline: proxy on %s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	return nil
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
