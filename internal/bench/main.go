// Command bench measures countersign against SPEC section 11, in one run on
// loopback: a local HTTPS upstream and a Go load generator (both in this
// process) drive, side by side,
//
//   - direct: the load generator talks TLS to the upstream itself;
//   - bare goproxy interception (internal/bench/baseline: the countersign
//     CA, its leaf cache, a tuned upstream pool) — the floor;
//   - countersign serve, the real binary, on its allow path with the example
//     policies and the audit log on, with fsync and without;
//   - mitmdump (Debian's mitmproxy) doing plain interception.
//
// Every proxy is its own process, so its CPU time and memory come from
// /proc/PID/stat and /proc/PID/status. Targets are measured in interleaved
// rounds (each round runs every target back to back, in a rotating order),
// and comparisons are medians of the per-round ratios, so noise on a shared
// machine hits them alike. Run it with `make bench`; BENCHMARKS.md explains
// each figure.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	conc        int
	dur, warm   time.Duration
	rounds      int
	latDur      time.Duration
	newDur      time.Duration
	xferConc    int
	xferDur     time.Duration
	streamSize  int64
	idle        int
	held        int
	heldTimeout time.Duration
	policy      string
	countersign string
	baseline    string
	mitmdump    string
	phases      []string
	profile     string
	profileSync bool
	out         string
}

var allPhases = []string{"throughput", "latency", "newconn", "transfer", "stream", "idle", "held", "eval"}

func main() {
	var cfg config
	var phases string
	var streamMiB int64
	flag.IntVar(&cfg.conc, "c", 50, "kept-alive connections for the throughput comparison (and concurrency of the new-connection test)")
	flag.DurationVar(&cfg.dur, "d", 3*time.Second, "measured time per target per round (throughput)")
	flag.DurationVar(&cfg.warm, "warmup", time.Second, "warm-up per target per round (throughput; a quarter of it elsewhere)")
	flag.IntVar(&cfg.rounds, "rounds", 3, "interleaved rounds (at least 3)")
	flag.DurationVar(&cfg.latDur, "latency-d", 2*time.Second, "measured time per target per round, 1 connection")
	flag.DurationVar(&cfg.newDur, "newconn-d", 2*time.Second, "measured time per target per round, one request per connection")
	flag.IntVar(&cfg.xferConc, "transfer-c", 4, "connections for the 10 MiB download and 1 MiB upload comparison")
	flag.DurationVar(&cfg.xferDur, "transfer-d", 2*time.Second, "measured time per target per round, 10 MiB downloads and 1 MiB uploads")
	flag.Int64Var(&streamMiB, "stream-mib", 1024, "size of the streamed upload and download, MiB")
	flag.IntVar(&cfg.idle, "idle", 2000, "idle intercepted connections for the memory-per-connection figure")
	flag.IntVar(&cfg.held, "held", 10000, "requests held for approval at once")
	flag.DurationVar(&cfg.heldTimeout, "held-timeout", 150*time.Second, "give up waiting for -held pending approvals after this long")
	flag.StringVar(&cfg.policy, "policy", os.Getenv(policyEnv), "policy paths for countersign, comma-separated; \"builtin\" for the built-in policy; empty: the sets under "+examplePolicies+" but incidents, together (default $"+policyEnv+")")
	flag.StringVar(&cfg.countersign, "countersign", "", "countersign binary (default: go build ./cmd/countersign)")
	flag.StringVar(&cfg.baseline, "baseline", "", "baseline binary (default: go build ./internal/bench/baseline)")
	flag.StringVar(&cfg.mitmdump, "mitmdump", "mitmdump", `mitmdump binary; "off" skips it`)
	flag.StringVar(&phases, "phases", strings.Join(allPhases, ","), "phases to run")
	flag.StringVar(&cfg.profile, "profile", "", "record a CPU profile of countersign with perf into this directory (a separate window after the throughput rounds; needs root: countersign is not dumpable)")
	flag.BoolVar(&cfg.profileSync, "profile-fsync", true, "profile the countersign instance with audit fsync (false: the one without)")
	flag.StringVar(&cfg.out, "o", "", "also write the report (Markdown) to this file")
	flag.Parse()
	cfg.streamSize = streamMiB << 20
	cfg.phases = strings.Split(phases, ",")
	for _, p := range cfg.phases {
		if !slices.Contains(allPhases, p) {
			fmt.Fprintf(os.Stderr, "bench: unknown phase %q (phases: %s)\n", p, strings.Join(allPhases, ","))
			os.Exit(2)
		}
	}
	if cfg.rounds < 3 {
		fmt.Fprintln(os.Stderr, "bench: -rounds must be at least 3 (SPEC 11)")
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	h, err := newHarness(cfg)
	if err != nil {
		return err
	}
	// ^C stops the children before the harness exits.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "bench: interrupted; stopping the proxies")
		h.close()
		os.Exit(130)
	}()
	defer h.close()
	return h.run()
}

func (h *harness) enabled(phase string) bool { return slices.Contains(h.cfg.phases, phase) }

func (h *harness) run() error {
	h.printf("# countersign bench — %s\n\n", time.Now().UTC().Format(time.RFC3339))
	h.printf("%s\n", h.machine())
	h.printf("upstream: HTTPS on %s, HTTP/1.1, 1 KiB responses; policy: %s; audit on\n", h.up.addr, h.policyName)
	h.printf("rounds: %d interleaved; throughput: %d kept-alive connections, %s per target per round after %s warm-up\n\n",
		h.cfg.rounds, h.cfg.conc, h.cfg.dur, h.cfg.warm)

	needLong := h.enabled("throughput") || h.enabled("latency") || h.enabled("newconn") || h.enabled("transfer")
	if needLong {
		if err := h.startLongLived(); err != nil {
			return err
		}
	}
	if h.enabled("throughput") {
		if err := h.throughput(); err != nil {
			return err
		}
	}
	if h.cfg.profile != "" && h.cs != nil {
		if err := h.profileCountersign(); err != nil {
			h.note("profile: %v", err)
		}
	}
	if h.enabled("latency") {
		if err := h.latency(); err != nil {
			return err
		}
	}
	if h.enabled("newconn") {
		if err := h.newConnections(); err != nil {
			return err
		}
	}
	if h.enabled("transfer") {
		if err := h.transfers(); err != nil {
			return err
		}
	}
	h.stopAll()
	if h.enabled("stream") {
		if err := h.streams(); err != nil {
			return err
		}
	}
	if h.enabled("idle") {
		if err := h.idleMemory(); err != nil {
			return err
		}
	}
	if h.enabled("held") {
		if err := h.heldApprovals(); err != nil {
			return err
		}
	}
	if h.enabled("eval") {
		h.evalBenchmarks()
	}
	h.report()
	return nil
}

// machine describes where the run happened.
func (h *harness) machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	mitm := "mitmdump: not available"
	if h.mitmdumpBin != "" {
		if out, err := exec.Command(h.mitmdumpBin, "--version").Output(); err == nil {
			mitm = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		}
	}
	goVer := "go"
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		goVer = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("machine: %s, %d CPUs, Linux %s, %s, %s, GOGC %s; load average at the start: %s",
		cpu, numCPU(), strings.TrimSpace(string(kernel)), goVer, mitm, envOr("GOGC", "unset (countersign paces it: 200, with at most 48 MiB of headroom; the baseline runs at 100)"), loadAverage())
}

// loadAverage is /proc/loadavg's 1, 5 and 15 minute figures: how busy the
// shared machine was.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func envOr(k, def string) string {
	if v, ok := os.LookupEnv(k); ok {
		return v
	}
	return def
}

func (h *harness) printf(format string, args ...any) {
	fmt.Fprintf(h.w, format, args...)
}

// note records a remark that the report repeats at the end.
func (h *harness) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	h.notes = append(h.notes, msg)
	fmt.Fprintln(os.Stderr, "bench: "+msg)
}
