package h1

import (
	"bufio"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// Chunked decoding states.
const (
	chunkHeader = iota // expecting a chunk-size line
	chunkData          // inside chunk data; body.n bytes left
	chunkEnd           // expecting the CRLF after chunk data
)

// body reads one request body from the connection's bufio.Reader. It decodes
// chunked bodies itself rather than with httputil.NewChunkedReader so that
// every framing error is an *Error, distinguishable from a connection error,
// and so that the trailer section is read under the same strict line rules
// (a differential fuzz test checks it against httputil).
//
// Read and Close may be called from different goroutines (http.Transport
// closes request bodies from its write loop), so both take mu.
type body struct {
	mu      sync.Mutex
	br      *bufio.Reader
	owner   *Reader
	chunked bool
	maxHdrs int

	n       int64 // Content-Length: bytes left; chunked: bytes left in chunk
	state   int   // chunked decoding state
	excess  int64 // chunked overhead not paid for by data
	scratch []byte
	err     error // sticky: io.EOF once fully read, or the first error
	closed  bool
	done    atomic.Bool // read to its end with the connection in sync
}

func (b *body) finished() bool { return b.done.Load() }

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.readLocked(p)
}

// Close discards up to 256 KiB of unread body so that the connection can be
// reused; if more remains, or the body is malformed, the Reader is marked not
// reusable. Close always returns nil.
func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(readerFunc(b.readLocked), drainLimit))
	}
	if b.err == nil {
		// All data may have been drained with the framing after it (the
		// final chunk and trailers) still unread: an empty read consumes
		// framing but no data.
		_, _ = b.readLocked(nil)
	}
	if b.err != io.EOF {
		b.owner.broken.Store(true)
	}
	return nil
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func (b *body) readLocked(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	var n int
	var err error
	if b.chunked {
		n, err = b.readChunked(p)
	} else {
		n, err = b.readFixed(p)
	}
	if err != nil {
		b.err = err
		if err == io.EOF {
			b.done.Store(true)
		} else {
			b.owner.broken.Store(true)
		}
	}
	return n, err
}

func (b *body) readFixed(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	if b.n == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *body) readChunked(p []byte) (int, error) {
	for {
		switch b.state {
		case chunkHeader:
			size, err := b.readChunkHeader()
			if err != nil {
				return 0, err
			}
			if size == 0 {
				if err := b.readTrailers(); err != nil {
					return 0, err
				}
				return 0, io.EOF
			}
			b.n, b.state = size, chunkData
		case chunkData:
			if len(p) == 0 {
				return 0, nil
			}
			if int64(len(p)) > b.n {
				p = p[:b.n]
			}
			n, err := b.br.Read(p)
			b.n -= int64(n)
			if b.n == 0 {
				b.state = chunkEnd
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		case chunkEnd:
			var crlf [2]byte
			if _, err := io.ReadFull(b.br, crlf[:]); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return 0, err
			}
			if crlf != [2]byte{'\r', '\n'} {
				return 0, refuse(http.StatusBadRequest, "missing CRLF after chunk data")
			}
			b.state = chunkHeader
		}
	}
}

// readChunkHeader reads "chunk-size [chunk-ext] CRLF" and returns the size.
// Extensions are checked for control characters and discarded. Like
// net/http, it refuses bodies whose framing overhead (extensions, tiny
// chunks) exceeds the data by more than 16 KiB.
func (b *body) readChunkHeader() (int64, error) {
	line, n, err := readLine(b.br, maxChunkLine, &b.scratch, nil)
	switch {
	case err == errLineTooLong:
		return 0, refuse(http.StatusBadRequest, "chunk-size line too long")
	case err == io.EOF:
		return 0, io.ErrUnexpectedEOF
	case err != nil:
		return 0, err
	}
	i := 0
	for i < len(line) && isHex(line[i]) {
		i++
	}
	if i == 0 {
		return 0, refuse(http.StatusBadRequest, "invalid chunk size")
	}
	if i > 16 {
		return 0, refuse(http.StatusBadRequest, "chunk size too large")
	}
	var size uint64
	for _, c := range line[:i] {
		size = size<<4 | uint64(unhex(c))
	}
	if size > 1<<62 {
		return 0, refuse(http.StatusBadRequest, "chunk size too large")
	}
	// RFC 9112 allows whitespace before ';', but net/http does not, and
	// neither do we: no client sends it.
	if ext := line[i:]; len(ext) > 0 {
		if ext[0] != ';' {
			return 0, refuse(http.StatusBadRequest, "invalid chunk size")
		}
		for _, c := range ext {
			if (c < 0x20 && c != '\t') || c == 0x7f {
				return 0, refuse(http.StatusBadRequest, "control character in chunk extension")
			}
		}
	}
	b.excess += int64(n)
	b.excess -= 16 + 2*int64(min(size, 1<<40))
	b.excess = max(b.excess, 0)
	if b.excess > 16<<10 {
		return 0, refuse(http.StatusBadRequest, "chunked encoding has too much overhead")
	}
	return int64(size), nil
}

// readTrailers reads and discards the trailer section after the last chunk,
// applying the header-field rules, at most 64 KiB and MaxHeaders fields.
func (b *body) readTrailers() error {
	budget, fields := maxTrailerBytes, 0
	for {
		line, n, err := readLine(b.br, budget, &b.scratch, nil)
		switch {
		case err == errLineTooLong:
			return refuse(http.StatusRequestHeaderFieldsTooLarge, "trailer section too large")
		case err == io.EOF:
			return io.ErrUnexpectedEOF
		case err != nil:
			return err
		}
		budget -= n
		if len(line) == 0 {
			return nil
		}
		if fields++; fields > b.maxHdrs {
			return refuse(http.StatusRequestHeaderFieldsTooLarge, "too many trailer fields")
		}
		if _, _, err := parseField(line); err != nil {
			return err
		}
	}
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
