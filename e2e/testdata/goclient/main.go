// Command goclient fetches a URL with Go's default HTTP client, which reads
// HTTPS_PROXY and SSL_CERT_FILE from the environment: the e2e suite runs it
// under `countersign run` to show Go agents are covered.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	resp, err := http.Get(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s\n", resp.StatusCode, b)
}
