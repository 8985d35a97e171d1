package git

import (
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/countersign/countersign/action"
)

// Limits on what a denial echoes back. The message repeats on every ref's
// line, and a push may name thousands of refs.
const (
	maxMessage       = 1000
	maxFullMessages  = 1000
	shortNgMessage   = "countersign: push denied"
	sideBand64kChunk = maxPktLen - 5 // length, band byte
	sideBandChunk    = 1000 - 5      // the original side-band's 1000-byte packets
)

// Respond implements action.Responder. Git shows nothing of an HTTP error's
// body, so every denial it can display is an HTTP 200 in the protocol's own
// terms:
//
//   - a push (POST git-receive-pack) gets a report-status that rejects every
//     ref with the message ("ng <ref> <message>"), inside side-band-64k when
//     the client asked for it, so git prints
//     "! [remote rejected] main -> main (countersign: …)";
//   - info/refs and upload-pack get an "ERR <message>" pkt-line, which git
//     prints as "fatal: remote error: countersign: …".
//
// A push whose client did not ask for report-status (git always does; a
// client that does not would take any 200 for success) and any request that
// does not fit these shapes get the plain-text answer, which git reports as
// an HTTP error.
func (p *Provider) Respond(r *action.Request, _ action.Action, d action.Denial) action.Response {
	e, ok := route(r)
	if !ok || e.service == "" {
		return action.Response{}
	}
	msg := oneLine(d.Message)
	switch {
	case e.infoRefs && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		return errPacket("application/x-git-"+e.service+"-advertisement", msg)
	case r.Method != http.MethodPost:
		return action.Response{}
	case e.service == serviceUploadPack:
		return errPacket("application/x-git-upload-pack-result", msg)
	default:
		return reportStatus(r, msg)
	}
}

func errPacket(contentType, msg string) action.Response {
	return gitResponse(contentType, pktLine(nil, "ERR "+msg+"\n"))
}

func gitResponse(contentType string, body []byte) action.Response {
	h := http.Header{}
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return action.Response{Status: http.StatusOK, Header: h, Body: body}
}

// reportStatus rejects every ref of the push (gitprotocol-pack(5),
// "Report Status"). When the commands could not all be read, the unpack
// status carries the message as well, so git fails the whole push even for
// refs it has no "ng" line for.
func reportStatus(r *action.Request, msg string) action.Response {
	var p push
	if body, _, err := requestBody(r); err == nil {
		p, _ = parseCommands(body)
	}
	if !p.has("report-status") && !p.has("report-status-v2") {
		return action.Response{}
	}
	var report []byte
	if p.Complete {
		report = pktLine(report, "unpack ok\n")
	} else {
		report = pktLine(report, "unpack "+msg+"\n")
	}
	for i, u := range p.Updates {
		m := msg
		if i >= maxFullMessages {
			m = shortNgMessage
		}
		line := "ng " + u.Ref + " " + m + "\n"
		if len(line) > maxPktPayload {
			line = "ng " + u.Ref + " " + shortNgMessage + "\n"
			if len(line) > maxPktPayload {
				continue
			}
		}
		report = pktLine(report, line)
	}
	report = append(report, "0000"...)

	chunk := 0
	switch {
	case p.has("side-band-64k"):
		chunk = sideBand64kChunk
	case p.has("side-band"):
		chunk = sideBandChunk
	}
	if chunk == 0 {
		return gitResponse("application/x-git-receive-pack-result", report)
	}
	// With side-band, the report travels on band 1 and a flush-pkt ends the
	// stream, as receive-pack sends it.
	var body []byte
	for len(report) > 0 {
		n := min(chunk, len(report))
		body = append(body, pktLen(n+5)...)
		body = append(body, 1)
		body = append(body, report[:n]...)
		report = report[n:]
	}
	body = append(body, "0000"...)
	return gitResponse("application/x-git-receive-pack-result", body)
}

// pktLen is the four-hex-digit length prefix of a pkt-line of n bytes.
func pktLen(n int) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[n>>12&0xf], digits[n>>8&0xf], digits[n>>4&0xf], digits[n&0xf]})
}

// oneLine makes the message safe for a pkt-line that git prints: one line,
// no control characters (no NUL or LF to break the protocol, no terminal
// escapes), at most maxMessage bytes of valid UTF-8.
func oneLine(s string) string {
	var b strings.Builder
	for _, c := range s {
		if b.Len()+utf8.RuneLen(c) > maxMessage-len("…") {
			b.WriteString("…")
			break
		}
		switch {
		case c == utf8.RuneError, c < 0x20, c == 0x7f, 0x80 <= c && c < 0xa0:
			b.WriteByte(' ')
		default:
			b.WriteRune(c)
		}
	}
	out := strings.TrimSpace(b.String())
	if out == "" {
		return "countersign: denied"
	}
	return out
}
