package testinfra

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a throwaway PostgreSQL server for tests: a fresh cluster in a
// temporary directory, listening on 127.0.0.1 with password (SCRAM)
// authentication, as a team's shared state server would be. Tests get a
// database each from NewDatabase. Stop removes everything.
//
// PostgreSQL refuses to run as root, so under root the server runs as the
// "postgres" user that Debian's postgresql package creates.
type Postgres struct {
	dir      string
	cmd      *exec.Cmd
	port     int
	password string
	exited   chan struct{}
	log      *syncBuffer

	mu sync.Mutex
	n  int
}

// PostgresBinDir finds the directory of initdb and postgres: $PATH first,
// then Debian's /usr/lib/postgresql/<version>/bin, newest version first.
func PostgresBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, postgres) not found on $PATH or in /usr/lib/postgresql/*/bin: run make deps (Debian package postgresql)")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// StartPostgres creates and starts a cluster. It waits, bounded, until the
// server accepts connections.
func StartPostgres(ctx context.Context) (*Postgres, error) {
	bin, err := PostgresBinDir()
	if err != nil {
		return nil, err
	}
	// Under root the server runs as postgres, which must reach its files:
	// /tmp, not a $TMPDIR it may not enter.
	base := ""
	if os.Geteuid() == 0 {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "countersign-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{dir: dir, password: randomHex(12), log: &syncBuffer{}}
	ok := false
	defer func() {
		if !ok {
			p.Stop()
		}
	}()
	var cred *runAs
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, PostgreSQL needs the postgres user (Debian's postgresql package creates it): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &runAs{uid: uid, gid: gid}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(p.password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(pwfile, cred.uid, cred.gid); err != nil {
			return nil, err
		}
	}
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "countersign",
		"--auth=scram-sha-256", "--pwfile="+pwfile, "--encoding=UTF8", "--locale=C", "--no-sync")
	// A machine's LANG may name a locale it has not generated, which
	// initdb and the server refuse: the tests need none.
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	initdb.SysProcAttr = procAttr(cred, false)
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// A free port: taken from the kernel, released, then given to the
	// server. Another process can take it in between: then try another.
	for attempt := 1; ; attempt++ {
		err := p.start(ctx, bin, data, cred)
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(p.log.String(), "could not bind") {
			return nil, err
		}
		p.log.Reset()
	}
	ok = true
	return p, nil
}

// start runs the server on a free port and waits, bounded, until it
// accepts connections.
func (p *Postgres) start(ctx context.Context, bin, data string, cred *runAs) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	p.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	p.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(p.port),
		"-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "max_connections=200",
		"-c", "shared_buffers=16MB",
		// Not /dev/shm, which containers often keep small or read-only.
		"-c", "dynamic_shared_memory_type=mmap")
	// If the test binary dies without Stop (a -timeout panic), the server
	// goes with it. The kernel sends that signal when the thread that
	// started the server ends, so a goroutine locked to that thread stays
	// until the server exits.
	p.cmd.SysProcAttr = procAttr(cred, true)
	p.cmd.Dir = p.dir
	p.cmd.Env = append(os.Environ(), "LC_ALL=C")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.exited = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := p.cmd.Start(); err != nil {
			started <- fmt.Errorf("start postgres: %w", err)
			close(p.exited)
			return
		}
		started <- nil
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		p.cmd = nil
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := pgx.Connect(ctx, p.DSN("postgres"))
		if err == nil {
			c.Close(ctx)
			return nil
		}
		select {
		case <-p.exited:
			p.cmd = nil
			return fmt.Errorf("postgres exited during start: %s", p.log.String())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within 60s: %v", err)
		}
	}
}

// DSN is the postgres:// URL of database db on this server.
func (p *Postgres) DSN(db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword("countersign", p.password),
		Host: "127.0.0.1:" + strconv.Itoa(p.port), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// Password is the password of the server's user, countersign.
func (p *Postgres) Password() string { return p.password }

// NewDatabase creates an empty database for one test and returns its URL.
func (p *Postgres) NewDatabase(tb testing.TB) string {
	tb.Helper()
	p.mu.Lock()
	p.n++
	name := "t" + strconv.Itoa(p.n) + "_" + randomHex(4)
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, p.DSN("postgres"))
	if err != nil {
		tb.Fatalf("connect to the test PostgreSQL server: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create database %s: %v", name, err)
	}
	return p.DSN(name)
}

// Stop stops the server (fast shutdown) and removes its files.
func (p *Postgres) Stop() {
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	os.RemoveAll(p.dir)
}

// syncBuffer is the server's output, written by the process while a
// failing start reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// runAs is the user the server runs as when the tests run as root, which
// PostgreSQL refuses to be.
type runAs struct{ uid, gid int }

// LazyPostgres is one PostgreSQL server for a test package, started by the
// first test that asks for a database. The package's TestMain calls Stop.
type LazyPostgres struct {
	once sync.Once
	pg   *Postgres
	err  error
}

// Database returns the URL of a new, empty database on the package's
// server, starting the server if need be.
func (l *LazyPostgres) Database(tb testing.TB) string {
	tb.Helper()
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		l.pg, l.err = StartPostgres(ctx)
	})
	if l.err != nil {
		tb.Fatalf("start the test PostgreSQL server: %v", l.err)
	}
	return l.pg.NewDatabase(tb)
}

// Stop stops the server, if one was started.
func (l *LazyPostgres) Stop() {
	if l.pg != nil {
		l.pg.Stop()
	}
}
