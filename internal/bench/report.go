package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func rps(s sample) float64  { return s.rps() }
func mbps(s sample) float64 { return s.mbps() }
func cpuPerReq(s sample) float64 {
	return s.cpuPerReq()
}
func totalCPU(s sample) float64 { return s.totalCPUPerReq() }
func p50(s sample) float64      { return float64(s.pct(0.50)) }
func p99(s sample) float64      { return float64(s.pct(0.99)) }
func p999(s sample) float64     { return float64(s.pct(0.999)) }

func ratio(x float64) string {
	if math.IsNaN(x) {
		return "—"
	}
	return fmt.Sprintf("%.2f×", x)
}

// report prints the per-phase tables and the SPEC 11 table.
func (h *harness) report() {
	r := &h.res
	if r.throughput != nil {
		h.printf("\n## Throughput: 1 KiB GETs, %d kept-alive connections (medians over %d rounds)\n\n", h.cfg.conc, h.cfg.rounds)
		h.printf("| target | req/s | p50 | p99 | p99.9 | proxy CPU/req | all CPU/req | req/s vs bare | proxy CPU vs bare | CPU-normalised vs bare | req/s vs direct |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, k := range []string{kDirect, kBare, kCS, kCSNoSync, kMitm} {
			ss, ok := r.throughput[k]
			if !ok {
				continue
			}
			h.printf("| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", displayName[k], medianOf(ss, rps),
				fmtDur(time.Duration(medianOf(ss, p50))), fmtDur(time.Duration(medianOf(ss, p99))), fmtDur(time.Duration(medianOf(ss, p999))),
				strings.TrimSpace(fmtCPU(medianOf(ss, cpuPerReq))), strings.TrimSpace(fmtCPU(medianOf(ss, totalCPU))),
				ratio(pairedRatio(ss, r.throughput[kBare], rps)), ratio(pairedRatio(ss, r.throughput[kBare], cpuPerReq)),
				ratio(pairedRatio(r.throughput[kBare], ss, totalCPU)), ratio(pairedRatio(ss, r.throughput[kDirect], rps)))
		}
		h.printf("\n\"all CPU\" adds the load generator and the upstream (this process) to the proxy; \"CPU-normalised\" is bare's all-CPU per request over the target's, the throughput ratio a machine to itself would give.\n")
	}
	if r.profile != nil {
		h.printf("\n## Where countersign's CPU goes (perf, %s of load at %d connections)\n\n", r.profile.window, h.cfg.conc)
		h.printf("%s", r.profile.text)
	}
	if r.latency != nil {
		h.printf("\n## Latency: 1 connection (medians over rounds; added = median of per-round differences from direct)\n\n")
		h.printf("| target | req/s | p50 | p99 | p99.9 | added p50 | added p99 |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, k := range []string{kDirect, kBare, kCS, kCSNoSync} {
			ss, ok := r.latency[k]
			if !ok {
				continue
			}
			h.printf("| %s | %.0f | %s | %s | %s | %s | %s |\n", displayName[k], medianOf(ss, rps),
				fmtDur(time.Duration(medianOf(ss, p50))), fmtDur(time.Duration(medianOf(ss, p99))), fmtDur(time.Duration(medianOf(ss, p999))),
				fmtSigned(pairedDiff(ss, r.latency[kDirect], p50)), fmtSigned(pairedDiff(ss, r.latency[kDirect], p99)))
		}
		if len(r.evalMicros) > 0 {
			us := slices.Clone(r.evalMicros)
			slices.Sort(us)
			h.printf("\ncountersign's own policy evaluation time (eval_us of its %d decision records in those windows): p50 %d µs, p99 %d µs, p99.9 %d µs, max %d µs\n",
				len(us), percentile(us, 0.5), percentile(us, 0.99), percentile(us, 0.999), us[len(us)-1])
		}
	}
	if r.newconn != nil {
		h.printf("\n## New connections: one request per TLS connection, %d at a time\n\n", h.cfg.conc)
		h.printf("| target | conn/s | p50 | p99 | proxy CPU/conn | all CPU/conn | vs direct | CPU-normalised vs direct | upstream TLS handshakes |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, k := range []string{kDirect, kBare, kCS} {
			ss, ok := r.newconn[k]
			if !ok {
				continue
			}
			var n, hs int64
			for _, s := range ss {
				n += s.n
				hs += s.handshakes
			}
			h.printf("| %s | %.0f | %s | %s | %s | %s | %s | %s | %d for %d client connections |\n", displayName[k], medianOf(ss, rps),
				fmtDur(time.Duration(medianOf(ss, p50))), fmtDur(time.Duration(medianOf(ss, p99))),
				strings.TrimSpace(fmtCPU(medianOf(ss, cpuPerReq))), strings.TrimSpace(fmtCPU(medianOf(ss, totalCPU))),
				ratio(pairedRatio(ss, r.newconn[kDirect], rps)), ratio(pairedRatio(r.newconn[kDirect], ss, totalCPU)), hs, n)
		}
	}
	if r.download != nil {
		h.printf("\n## Transfers: 10 MiB downloads and 1 MiB uploads, %d connections\n\n", h.cfg.xferConc)
		h.printf("| target | download MiB/s | vs bare | upload MiB/s (binary) | vs bare | upload MiB/s (text) | vs bare |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, k := range []string{kDirect, kBare, kCS} {
			d, u, ut := r.download[k], r.upload[k], r.uploadText[k]
			if d == nil {
				continue
			}
			h.printf("| %s | %.0f | %s | %.0f | %s | %.0f | %s |\n", displayName[k], medianOf(d, mbps), ratio(pairedRatio(d, r.download[kBare], mbps)),
				medianOf(u, mbps), ratio(pairedRatio(u, r.upload[kBare], mbps)), medianOf(ut, mbps), ratio(pairedRatio(ut, r.uploadText[kBare], mbps)))
		}
		h.printf("\nA text body up to inspect.body_limit (1 MiB) is parsed into the policy input and recorded in the audit log; a binary one is hashed only.\n")
	}
	if r.streams != nil {
		h.printf("\n## Streams: %d MiB down, then up, one connection, fresh proxy\n\n", h.cfg.streamSize>>20)
		h.printf("| target | download MiB/s | upload MiB/s | RSS before | peak RSS (VmHWM) |\n|---|---:|---:|---:|---:|\n")
		for _, k := range []string{kBare, kCS} {
			s := r.streams[k]
			if s == nil {
				continue
			}
			h.printf("| %s | %.0f | %.0f | %s | %s |\n", displayName[k], s.downRate, s.upRate, fmtBytes(s.rssBefore), fmtBytes(max(s.hwmDown, s.hwmUp)))
		}
	}
	if r.idle != nil {
		h.printf("\n## Idle intercepted connections (one request each, then idle; fresh proxy)\n\n")
		h.printf("| target | connections | RSS before | RSS after | per connection |\n|---|---:|---:|---:|---:|\n")
		for _, k := range []string{kBare, kCS} {
			s := r.idle[k]
			if s == nil {
				continue
			}
			h.printf("| %s | %d | %s | %s | %.1f KiB |\n", displayName[k], s.n, fmtBytes(s.before), fmtBytes(s.after), s.perConn/1024)
		}
	}
	if s := r.held; s != nil {
		h.printf("\n## Held approvals\n\n")
		h.printf("%d of %d requests pending after %s (admin API: %d pending%s; approvals opening at %.1f/s over the last 10 s); RSS %s before, %s with them held, peak %s",
			s.reached, s.want, s.elapsed.Round(time.Second), s.pendingAPI, errSuffix(s.apiErr), s.rate, fmtBytes(s.rssBefore), fmtBytes(s.rss), fmtBytes(s.hwm))
		if s.reached > 0 {
			h.printf(" (%.1f KiB per held request)", float64(s.rss-s.rssBefore)/float64(s.reached)/1024)
		}
		h.printf("\n")
		if m := s.runtime; m != nil {
			h.printf("\nGo runtime with them held: %.0f goroutines, stacks %s, live heap %s (spans in use %s), %s mapped in all.\n",
				m["go_goroutines"], fmtBytes(int64(m["go_memstats_stack_inuse_bytes"])), fmtBytes(int64(m["go_memstats_heap_alloc_bytes"])),
				fmtBytes(int64(m["go_memstats_heap_inuse_bytes"])), fmtBytes(int64(m["go_memstats_sys_bytes"])))
		}
	}
	if e := r.eval; e != nil {
		h.printf("\n## Policy evaluation benchmark (%s, golden corpus of %d requests)\n\n", e.policyName, len(hot.inputs))
		h.printf("| | µs/op | allocs/op | p50 | p99 | p99.9 |\n|---|---:|---:|---:|---:|---:|\n")
		h.printf("| uncached (OPA every time) | %.1f | %d | %.1f µs | %.1f µs | %.1f µs |\n", e.nsPerOp/1e3, e.allocs, e.p50, e.p99, e.p999)
		h.printf("| decision cache hit | %.1f | %d | | %.1f µs | |\n", e.cachedNs/1e3, e.cachedAllocs, e.cachedP99)
		h.printf("| input construction (NewInput) | %.1f | %d | | | |\n", e.inputNs/1e3, e.inputAllocs)
	}

	h.printf("\n## SPEC 11\n\n")
	h.printf("| figure | goal | measured | |\n|---|---|---|---|\n")
	for _, row := range h.specRows() {
		h.printf("| %s | %s | %s | %s |\n", row.figure, row.goal, row.measured, row.verdict)
	}
	h.printf("\nload average at the end: %s\n", loadAverage())
	if len(h.notes) > 0 {
		h.printf("\nNotes:\n")
		for _, n := range h.notes {
			h.printf("- %s\n", strings.ReplaceAll(n, "\n", " "))
		}
	}
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return ", " + err.Error()
}

func fmtSigned(ns float64) string {
	if math.IsNaN(ns) {
		return "—"
	}
	return fmt.Sprintf("%+.3f ms", ns/1e6)
}

type specRow struct{ figure, goal, measured, verdict string }

func verdict(ok bool) string {
	if ok {
		return "pass"
	}
	return "**FAIL**"
}

const notRun = "not run"

// specRows evaluates every row of SPEC 11. The verdict is for countersign's
// defaults (audit fsync on); the no-fsync figure is shown beside it.
func (h *harness) specRows() []specRow {
	r := &h.res
	var rows []specRow
	add := func(figure, goal, measured, v string) {
		rows = append(rows, specRow{figure, goal, measured, v})
	}
	both := func(fsync, noSync float64, ok func(float64) bool, f func(float64) string) (string, string) {
		m := "fsync " + f(fsync) + " · no fsync " + f(noSync)
		v := verdict(ok(fsync))
		if ok(fsync) != ok(noSync) {
			v += " (no fsync: " + strings.Trim(verdict(ok(noSync)), "*") + ")"
		}
		return m, v
	}

	if t := r.throughput; t != nil && t[kBare] != nil && t[kCS] != nil {
		m, v := both(pairedRatio(t[kCS], t[kBare], rps), pairedRatio(t[kCSNoSync], t[kBare], rps), func(x float64) bool { return x >= 0.85 }, ratio)
		m += fmt.Sprintf(" (CPU-normalised %s · %s)", ratio(pairedRatio(t[kBare], t[kCS], totalCPU)), ratio(pairedRatio(t[kBare], t[kCSNoSync], totalCPU)))
		add("allow path throughput vs bare goproxy interception", "≥ 0.85×", m, v)
		m, v = both(pairedRatio(t[kCS], t[kBare], cpuPerReq), pairedRatio(t[kCSNoSync], t[kBare], cpuPerReq), func(x float64) bool { return x <= 1.25 }, ratio)
		m += fmt.Sprintf(" (%.0f vs %.0f µs/req)", medianOf(t[kCS], cpuPerReq), medianOf(t[kBare], cpuPerReq))
		add("proxy CPU per request vs bare interception", "≤ 1.25×", m, v)
		if t[kMitm] != nil {
			x := pairedRatio(t[kCS], t[kMitm], rps)
			add("throughput vs mitmdump (plain interception)", "≥ 5×", fmt.Sprintf("%s (CPU/req: mitmdump %.0f µs, countersign %.0f µs)",
				ratio(x), medianOf(t[kMitm], cpuPerReq), medianOf(t[kCS], cpuPerReq)), verdict(x >= 5))
		} else {
			add("throughput vs mitmdump (plain interception)", "≥ 5×", "mitmdump not available", "**SKIPPED** (install mitmproxy)")
		}
	} else {
		add("allow path throughput vs bare goproxy interception", "≥ 0.85×", notRun, "")
		add("proxy CPU per request vs bare interception", "≤ 1.25×", notRun, "")
		add("throughput vs mitmdump (plain interception)", "≥ 5×", notRun, "")
	}

	if l := r.latency; l != nil && l[kCS] != nil && l[kDirect] != nil {
		d50, d99 := pairedDiff(l[kCS], l[kDirect], p50), pairedDiff(l[kCS], l[kDirect], p99)
		n50, n99 := pairedDiff(l[kCSNoSync], l[kDirect], p50), pairedDiff(l[kCSNoSync], l[kDirect], p99)
		ok := func(a, b float64) bool { return a <= 0.5e6 && b <= 1.0e6 }
		v := verdict(ok(d50, d99))
		if ok(d50, d99) != ok(n50, n99) {
			v += " (no fsync: " + strings.Trim(verdict(ok(n50, n99)), "*") + ")"
		}
		add("added latency over direct, 1 connection", "≤ 0.5 ms p50, ≤ 1.0 ms p99",
			fmt.Sprintf("fsync %s / %s · no fsync %s / %s", fmtSigned(d50), fmtSigned(d99), fmtSigned(n50), fmtSigned(n99)), v)
	} else {
		add("added latency over direct, 1 connection", "≤ 0.5 ms p50, ≤ 1.0 ms p99", notRun, "")
	}

	evalGoal := "≤ 30 µs/op and ≤ 150 allocs; p99 ≤ 250 µs in the proxy at 1 connection"
	if e := r.eval; e != nil {
		var proxyP99 int64 = -1
		inProxy := "in the proxy: not measured"
		if len(r.evalMicros) > 0 {
			us := slices.Clone(r.evalMicros)
			slices.Sort(us)
			proxyP99 = percentile(us, 0.99)
			inProxy = fmt.Sprintf("in the proxy p99 %d µs", proxyP99)
		}
		m := fmt.Sprintf("uncached %.1f µs, %d allocs (p99 %.0f µs) · cache hit %.1f µs, %d allocs · %s",
			e.nsPerOp/1e3, e.allocs, e.p99, e.cachedNs/1e3, e.cachedAllocs, inProxy)
		bench := e.nsPerOp <= 30e3 && e.allocs <= 150
		cached := e.cachedNs <= 30e3 && e.cachedAllocs <= 150
		proxyOK := proxyP99 >= 0 && proxyP99 <= 250
		v := verdict(bench && proxyOK)
		if !bench && cached && proxyOK {
			v = "**FAIL** uncached (pass on cache hits)"
		}
		if proxyP99 < 0 {
			v += " (proxy p99 not measured)"
		}
		add("policy evaluation ("+e.policyName+")", evalGoal, m, v)
	} else {
		add("policy evaluation", evalGoal, notRunOr(r.evalErr), "")
	}

	if n := r.newconn; n != nil && n[kCS] != nil && n[kDirect] != nil {
		x := pairedRatio(n[kCS], n[kDirect], rps)
		add("new connections (one request each) vs direct TLS", "≥ 0.45×",
			fmt.Sprintf("%s (%.0f vs %.0f conn/s; bare %s; CPU-normalised %s)", ratio(x), medianOf(n[kCS], rps), medianOf(n[kDirect], rps),
				ratio(pairedRatio(n[kBare], n[kDirect], rps)), ratio(pairedRatio(n[kDirect], n[kCS], totalCPU))),
			verdict(x >= 0.45))
		var cn, hs int64
		for _, s := range n[kCS] {
			cn += s.n
			hs += s.handshakes
		}
		add("upstream TLS handshakes for N client connections to one host", "≤ concurrent connections, not N",
			fmt.Sprintf("%d handshakes for N = %d client connections, %d at a time", hs, cn, h.cfg.conc), verdict(hs <= int64(h.cfg.conc)))
	} else {
		add("new connections (one request each) vs direct TLS", "≥ 0.45×", notRun, "")
		add("upstream TLS handshakes for N client connections to one host", "≤ concurrent connections, not N", notRun, "")
	}

	if d := r.download; d != nil && d[kCS] != nil && d[kBare] != nil {
		dx, ux := pairedRatio(d[kCS], d[kBare], mbps), pairedRatio(r.upload[kCS], r.upload[kBare], mbps)
		tx := pairedRatio(r.uploadText[kCS], r.uploadText[kBare], mbps)
		add("10 MiB download / 1 MiB upload vs bare interception", "≥ 0.95×",
			fmt.Sprintf("%s / %s (binary body; a text body: %s)", ratio(dx), ratio(ux), ratio(tx)), verdict(dx >= 0.95 && ux >= 0.95))
	} else {
		add("10 MiB download / 1 MiB upload vs bare interception", "≥ 0.95×", notRun, "")
	}

	if i := r.idle; i != nil && i[kCS] != nil {
		c := i[kCS]
		m := fmt.Sprintf("%.1f KiB (%d connections; bare %.1f KiB)", c.perConn/1024, c.n, i[kBare].perConn/1024)
		add("memory per idle intercepted connection", "≤ 48 KiB", m, verdict(c.n == h.cfg.idle && c.perConn <= 48*1024))
	} else {
		add("memory per idle intercepted connection", "≤ 48 KiB", notRun, "")
	}

	if s := r.streams; s != nil && s[kCS] != nil {
		c, b := s[kCS], s[kBare]
		growth := max(c.hwmDown, c.hwmUp) - c.rssBefore
		m := fmt.Sprintf("%d MiB each way: peak RSS %s (+%s; bare +%s), %.0f / %.0f MiB/s", c.size>>20,
			fmtBytes(max(c.hwmDown, c.hwmUp)), fmtBytes(growth), fmtBytes(max(b.hwmDown, b.hwmUp)-b.rssBefore), c.downRate, c.upRate)
		ok := c.downErr == nil && c.upErr == nil && growth < 64<<20
		if !ok && (c.downErr != nil || c.upErr != nil) {
			m += fmt.Sprintf(" — errors: %v, %v", c.downErr, c.upErr)
		}
		add(fmt.Sprintf("%d MiB upload and download", c.size>>20), "streams, RSS bounded (peak growth < 64 MiB)", m, verdict(ok))
	} else {
		add("1 GiB upload or download", "streams, RSS bounded", notRun, "")
	}

	if s := r.held; s != nil {
		m := fmt.Sprintf("%d of %d held, RSS %.0f MB (peak %.0f MB)", s.reached, s.want, float64(s.rss)/1e6, float64(s.hwm)/1e6)
		switch {
		case s.reached >= s.want:
		case s.stalled:
			m += fmt.Sprintf(" — no new approval for 20 s: stuck at %d", s.reached)
		default:
			m += fmt.Sprintf(" — gave up after %s (-held-timeout) while approvals still opened at %.0f/s", s.elapsed.Round(time.Second), s.rate)
		}
		if s.failed > 0 {
			m += fmt.Sprintf("; %d client connections failed (%v)", s.failed, s.firstErr)
		}
		add(fmt.Sprintf("%d held approvals at once", s.want), "< 300 MB RSS", m, verdict(s.reached >= s.want && s.rss < 300e6))
	} else {
		add("10,000 held approvals at once", "< 300 MB RSS", notRun, "")
	}
	return rows
}

func notRunOr(err error) string {
	if err != nil {
		return "failed: " + err.Error()
	}
	return notRun
}

// profileSummary is what perf said about countersign under load.
type profileSummary struct {
	window time.Duration
	text   string
}

// profileCountersign records countersign (audit fsync, or not with
// -profile-fsync=false) with perf while the
// load generator drives it, and summarises where its CPU time goes.
func (h *harness) profileCountersign() error {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return fmt.Errorf("perf not found (Debian: apt-get install linux-perf)")
	}
	if err := os.MkdirAll(h.cfg.profile, 0o755); err != nil {
		return err
	}
	data := filepath.Join(h.cfg.profile, "countersign.perf.data")
	window := max(2*h.cfg.dur, 10*time.Second)
	fmt.Fprintf(os.Stderr, "bench: profiling countersign with perf for %s\n", window)
	pt := h.targets[kCS]
	if !h.cfg.profileSync {
		pt = h.targets[kCSNoSync]
	}
	rec := exec.Command(perf, "record", "-F", "999", "-g", "-p", strconv.Itoa(pt.proc.cmd.Process.Pid), "-o", data,
		"--", "sleep", strconv.FormatFloat(window.Seconds(), 'f', 1, 64))
	var recOut bytes.Buffer
	rec.Stdout, rec.Stderr = &recOut, &recOut
	if err := rec.Start(); err != nil {
		return err
	}
	t := pt
	c := t.client(h.cfg.conc, true)
	defer c.CloseIdleConnections()
	s := measure(t, c, h.cfg.conc, window+500*time.Millisecond, getSmall)
	if err := rec.Wait(); err != nil {
		return fmt.Errorf("perf record: %v: %s", err, recOut.String())
	}
	report := func(args ...string) (string, error) {
		out, err := exec.Command(perf, append([]string{"report", "-i", data, "--stdio"}, args...)...).Output()
		return string(out), err
	}
	flat, err := report("--no-children", "--sort", "sym", "-g", "none")
	if err != nil {
		return fmt.Errorf("perf report: %w", err)
	}
	cum, err := report("--children", "--sort", "sym", "-g", "none", "--percent-limit", "0.2")
	if err != nil {
		return fmt.Errorf("perf report: %w", err)
	}
	_ = os.WriteFile(filepath.Join(h.cfg.profile, "flat.txt"), []byte(flat), 0o644)
	_ = os.WriteFile(filepath.Join(h.cfg.profile, "cumulative.txt"), []byte(cum), 0o644)

	var b strings.Builder
	fmt.Fprintf(&b, "%.0f req/s, %s µs CPU per request during the profile; perf data and full reports in %s\n\n",
		s.rps(), strings.TrimSpace(strings.TrimSuffix(fmtCPU(s.cpuPerReq()), "µs/req")), h.cfg.profile)
	b.WriteString("Self time by package:\n\n| package | self % |\n|---|---:|\n")
	for _, p := range byPackage(parsePerf(flat), 15) {
		fmt.Fprintf(&b, "| %s | %.1f |\n", p.name, p.pct)
	}
	b.WriteString("\nInclusive time of the pipeline's parts:\n\n| function (and what it calls) | % of countersign's CPU |\n|---|---:|\n")
	entries := parsePerf(cum)
	for _, want := range profileFunctions {
		for _, e := range entries {
			if strings.HasSuffix(e.sym, want) {
				fmt.Fprintf(&b, "| %s | %.1f |\n", want, e.pct)
				break
			}
		}
	}
	b.WriteString("\nSystem calls, context switches and fsyncs per request (perf stat, 3 s of the same load each):\n\n| target | syscalls/req | context switches/req | fsyncs/req |\n|---|---:|---:|---:|\n")
	for _, k := range []string{kBare, kCS, kCSNoSync} {
		t := h.targets[k]
		if t == nil || t.proc == nil {
			continue
		}
		sys, cs, fsync, err := h.countSyscalls(perf, t, 3*time.Second)
		if err != nil {
			fmt.Fprintf(&b, "| %s | %v | | |\n", t.name, err)
			continue
		}
		fmt.Fprintf(&b, "| %s | %.1f | %.2f | %.3f |\n", t.name, sys, cs, fsync)
	}
	h.res.profile = &profileSummary{window: window, text: b.String()}
	return nil
}

// countSyscalls drives t with the throughput load while perf stat counts the
// proxy's system calls, context switches and fsyncs, and returns them per
// request.
func (h *harness) countSyscalls(perf string, t *target, window time.Duration) (sysPerReq, csPerReq, fsyncPerReq float64, err error) {
	st := exec.Command(perf, "stat", "-x", ",", "-e", "raw_syscalls:sys_enter,context-switches,syscalls:sys_enter_fsync",
		"-p", strconv.Itoa(t.proc.cmd.Process.Pid), "--", "sleep", strconv.FormatFloat(window.Seconds(), 'f', 1, 64))
	var out bytes.Buffer
	st.Stdout, st.Stderr = &out, &out
	if err := st.Start(); err != nil {
		return 0, 0, 0, err
	}
	c := t.client(h.cfg.conc, true)
	defer c.CloseIdleConnections()
	// The load runs past perf's window on both sides; the requests counted
	// are scaled to the window.
	s := measure(t, c, h.cfg.conc, window+500*time.Millisecond, getSmall)
	if err := st.Wait(); err != nil {
		return 0, 0, 0, fmt.Errorf("perf stat: %v: %s", err, out.String())
	}
	reqs := s.rps() * window.Seconds()
	if reqs <= 0 {
		return 0, 0, 0, errors.New("no requests completed")
	}
	var sys, cs, fsync float64
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(f[2], "sys_enter_fsync"):
			fsync = v
		case strings.Contains(f[2], "sys_enter"):
			sys = v
		case strings.Contains(f[2], "context-switches"):
			cs = v
		}
	}
	return sys / reqs, cs / reqs, fsync / reqs, nil
}

// profileFunctions are the parts of the request path whose inclusive cost
// the summary lists, when perf saw them.
var profileFunctions = []string{
	"proxy.(*Server).serveTunnel",
	"proxy.(*Server).handle",
	"proxy.(*Server).readPrefix",
	"action.(*Classifier).Classify",
	"policy.NewInput",
	"policy.(*Input).Map",
	"policy.(*Engine).Decide",
	"proxy.(*Server).decisionEvent",
	"audit.(*Log).Record",
	"audit.(*Log).RecordAsync",
	"proxy.(*Server).forward",
	"net/http.(*Transport).RoundTrip",
	"crypto/tls.(*Conn).Read",
	"crypto/tls.(*Conn).Write",
	"crypto/tls.(*Conn).HandshakeContext",
	"runtime.gcBgMarkWorker",
	"runtime.mallocgc",
	"internal/runtime/syscall.Syscall6",
	"runtime.schedule",
}

type perfEntry struct {
	pct float64
	sym string
}

// parsePerf reads `perf report --stdio --sort sym -g none` lines:
// "    12.34%  [.] symbol" (--no-children) or "    45.6%  1.2%  [.] symbol".
func parsePerf(out string) []perfEntry {
	var es []perfEntry
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasSuffix(f[0], "%") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		i := slices.IndexFunc(f, func(s string) bool { return s == "[.]" || s == "[k]" })
		if i < 0 || i+1 >= len(f) {
			continue
		}
		sym := strings.Join(f[i+1:], " ")
		if f[i] == "[k]" {
			sym = "[kernel] " + sym
		}
		es = append(es, perfEntry{pct, sym})
	}
	return es
}

type pkgShare struct {
	name string
	pct  float64
}

// byPackage adds up self time per Go package (kernel symbols together).
func byPackage(es []perfEntry, top int) []pkgShare {
	sum := map[string]float64{}
	for _, e := range es {
		sum[packageOf(e.sym)] += e.pct
	}
	var out []pkgShare
	for k, v := range sum {
		out = append(out, pkgShare{k, v})
	}
	slices.SortFunc(out, func(a, b pkgShare) int {
		switch {
		case a.pct > b.pct:
			return -1
		case a.pct < b.pct:
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	if len(out) > top {
		out = out[:top]
	}
	return out
}

// packageOf returns the Go package of a symbol such as
// "github.com/open-policy-agent/opa/v1/topdown.(*eval).evalStep" or
// "crypto/internal/fips140/aes/gcm.gcmAesEnc".
func packageOf(sym string) string {
	switch {
	case strings.HasPrefix(sym, "[kernel]"):
		return "kernel"
	case strings.HasPrefix(sym, "__vdso"):
		return "vdso (clock_gettime)"
	}
	slash := strings.LastIndex(sym, "/")
	dot := strings.Index(sym[slash+1:], ".")
	if dot < 0 {
		// Assembly without a package prefix: aeshashbody, memeqbody,
		// p256MulInternal, …
		return "assembly (" + sym + ")"
	}
	return sym[:slash+1+dot]
}
