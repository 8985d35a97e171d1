package session

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// selfTest proves, from inside the namespaces and before the child starts,
// that the only way out is the proxy: no interface but loopback is up, every
// direct connection fails, every hidden path reads as empty, and the
// forwarder reaches a countersign proxy. Any failure refuses the session.
func selfTest(ctx context.Context, spec selfTestSpec) error {
	if err := checkInterfaces(); err != nil {
		return err
	}
	if err := checkDirect(ctx, spec.TCP, spec.UDP); err != nil {
		return err
	}
	if err := checkHidden(spec.Empty); err != nil {
		return err
	}
	return checkProxy(ctx, spec.Proxy)
}

// checkInterfaces fails when any interface but loopback is up.
func checkInterfaces() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("list network interfaces: %w", err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagLoopback == 0 {
			return fmt.Errorf("network interface %s is up inside the namespace", i.Name)
		}
	}
	return nil
}

// directTimeout bounds each direct probe. Without a route a connection fails
// at once; one that is still trying after this has found a way out.
const directTimeout = 2 * time.Second

// checkDirect dials every TCP probe and connects a UDP socket to every UDP
// probe, in parallel. Each must fail; a TCP attempt that neither connects
// nor fails within directTimeout counts as a way out (packets left).
func checkDirect(ctx context.Context, tcp, udp []string) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	report := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for _, addr := range tcp {
		wg.Go(func() {
			dctx, cancel := context.WithTimeout(ctx, directTimeout)
			defer cancel()
			var d net.Dialer
			c, err := d.DialContext(dctx, "tcp", addr)
			switch {
			case err == nil:
				c.Close()
				report(fmt.Errorf("a direct TCP connection to %s succeeded", addr))
			case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
				report(fmt.Errorf("a direct TCP connection to %s was still being attempted after %s: a route exists", addr, directTimeout))
			}
		})
	}
	for _, addr := range udp {
		wg.Go(func() {
			var d net.Dialer
			c, err := d.DialContext(ctx, "udp", addr)
			if err == nil {
				c.Close()
				report(fmt.Errorf("UDP to %s is routable", addr))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// checkHidden fails when a hidden path shows content: a directory with
// entries or a file with bytes.
func checkHidden(paths []string) error {
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			// Gone (hidden by a private directory) or unreadable: hidden.
			continue
		}
		if fi.IsDir() {
			entries, err := os.ReadDir(p)
			if err == nil && len(entries) > 0 {
				return fmt.Errorf("%s is still visible inside the namespace", p)
			}
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		n, _ := f.Read(make([]byte, 1))
		f.Close()
		if n > 0 {
			return fmt.Errorf("%s is still readable inside the namespace", p)
		}
	}
	return nil
}

// probeTimeout bounds the proxy probe (the parent may be busy starting).
const probeTimeout = 10 * time.Second

// checkProxy sends a request the proxy answers itself, without credentials,
// policy or forwarding: an origin-form GET, which countersign refuses with a
// text that starts "countersign:".
func checkProxy(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("the forwarder at %s does not answer: %w", addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, "GET /countersign-self-test HTTP/1.1\r\nHost: countersign.invalid\r\nConnection: close\r\n\r\n"); err != nil {
		return fmt.Errorf("write to the proxy through %s: %w", addr, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return fmt.Errorf("no answer from the proxy through %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(string(body), "countersign:") {
		return fmt.Errorf("the server behind %s is not a countersign proxy (HTTP %d)", addr, resp.StatusCode)
	}
	return nil
}
