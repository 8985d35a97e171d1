package redact

import (
	"math/bits"
	"slices"
	"strings"
)

// Text returns s with credentials that have a recognisable shape replaced by
// Mask, keeping the text around them:
//
//   - GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_), GitLab
//     glpat-, Slack xox?- and xapp- tokens and webhook URLs, OpenAI and
//     Anthropic sk-…, Stripe sk_live_/rk_live_, Google AIza… keys and ya29.
//     access tokens, npm_…, pypi-…, Hugging Face hf_…;
//   - JWTs (three base64url segments, the first starting eyJ);
//   - PEM private key blocks: the header, the base64 lines after it and
//     the END line (a body cut off at the limit ends in key material);
//   - the password in a URL's userinfo (postgres://app:s3cr3t@db);
//   - a value of 16 or more base64 characters right after a credential's
//     name and '=', ':' or '>' (aws_secret_access_key = …,
//     "SecretAccessKey": "…", <SessionToken>…, GITHUB_TOKEN=…,
//     "client_secret": "…", password: …, Signature=…);
//   - the credential after Bearer, and after Basic when it decodes to
//     user:password.
//
// AWS access key ids (AKIA…), git object ids and words such as "token" in
// prose are kept. When s contains none of the prefixes above, Text returns s
// itself without allocating. Text is idempotent.
func Text(s string) string {
	spans := find(s, nil)
	if spans == nil {
		return s
	}
	// Masking can complete a shape that a token inside it hid (a PEM label
	// that held a token). Masking again until nothing changes makes Text
	// idempotent; it ends because every new span covers text not yet masked
	// and Mask itself matches no rule. The bound is a backstop.
	out := mask(s, spans)
	for range maxPasses {
		spans = find(out, spans[:0])
		if len(spans) == 0 {
			break
		}
		out = mask(out, spans)
	}
	return out
}

const maxPasses = 8

// find appends the spans of s that rules match to spans.
//
// It makes one pass over s. At each offset a filter on the next three bytes
// (a bit per rule in each of three tables) picks the rules whose prefix may
// start there; most offsets pick none, so text without tokens costs a few
// table loads per byte and no allocation.
func find(s string, spans []span) []span {
	// reached[r] is the end of rule r's last span. For a rule that nests,
	// a later match whose prefix lies inside it is not tried: without
	// that, "token=token=token=…" scanned to the end of s at every match,
	// quadratic time on a hostile path (found by review). Other rules'
	// later matches can end past it ("ghp_…ghp_…", where the first run
	// ends at the second '_'). barren[r] is the offset before which rule r
	// said nothing of its can start.
	var reached, barren [64]int
	for i := 0; i+2 < len(s); i++ {
		m := filter[0][s[i]] & filter[1][s[i+1]] & filter[2][s[i+2]]
		for m != 0 {
			ri := bits.TrailingZeros64(m)
			r := &rules[ri]
			m &= m - 1
			if r.nests && i+len(r.prefix)+nestMargin < reached[ri] || i < barren[ri] || !r.hasPrefix(s[i:]) || r.boundary && !atBoundary(s, i) {
				continue
			}
			if start, end := r.match(s, i, len(r.prefix)); end > start && start >= 0 {
				spans = append(spans, span{start, end})
				reached[ri] = end
			} else if start < 0 {
				barren[ri] = max(barren[ri], end)
			}
		}
	}
	return spans
}

type span struct{ start, end int }

// mask replaces the union of spans in s by one Mask per contiguous region.
func mask(s string, spans []span) string {
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	var b strings.Builder
	b.Grow(len(s))
	pos := 0 // s[:pos] is written or masked
	for k := 0; k < len(spans); {
		start, end := spans[k].start, spans[k].end
		for k++; k < len(spans) && spans[k].start <= end; k++ {
			end = max(end, spans[k].end)
		}
		b.WriteString(s[pos:start])
		b.WriteString(Mask)
		pos = end
	}
	b.WriteString(s[pos:])
	return b.String()
}

// rule finds one kind of token. match is called with the index i of prefix
// in s and the prefix length n; it returns the span to mask, or end <= start
// when the text there is not a token. A rule that scans far before it can
// tell returns start -1 and, as end, the offset before which no other
// occurrence of its prefix can match either: find skips those, which keeps
// it linear on text such as "a://a://…" (found by review: 256 KiB took 15 s).
type rule struct {
	prefix string // at least 3 bytes
	// fold makes prefix match without regard to ASCII case.
	fold bool
	// boundary requires that prefix not continue a word, for prefixes
	// short or common enough to occur inside ordinary words (task-, disk-).
	boundary bool
	// nests is set when a match whose prefix lies inside this rule's last
	// span, nestMargin bytes or more before its end, ends within it, so
	// find need not try it: a keyed value's alphabet holds '=', so in
	// "token=token=…" every later name is inside the first value, and so
	// are the words and separator after it (a value starting after a
	// tab could end later).
	nests bool
	match func(s string, i, n int) (start, end int)
}

func (r *rule) hasPrefix(s string) bool {
	if r.fold {
		return len(s) >= len(r.prefix) && strings.EqualFold(s[:len(r.prefix)], r.prefix)
	}
	return strings.HasPrefix(s, r.prefix)
}

// Character classes of token bodies.
const (
	alnum     = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	base64URL = alnum + "_-"
	base64Std = alnum + "+/="
)

var rules = []rule{
	// GitHub issues 36 characters after gh?_; shorter ones are accepted to
	// err on the side of masking.
	{prefix: "ghp_", match: run(alnum, 20)},
	{prefix: "gho_", match: run(alnum, 20)},
	{prefix: "ghu_", match: run(alnum, 20)},
	{prefix: "ghs_", match: run(alnum, 20)},
	{prefix: "ghr_", match: run(alnum, 20)},
	{prefix: "github_pat_", match: run(alnum+"_", 20)},
	{prefix: "glpat-", match: run(base64URL, 20)},
	{prefix: "xox", match: slackToken},
	{prefix: "xapp-", match: run(alnum+"-", 10)},
	{prefix: "hooks.slack.com/", match: slackWebhook},
	{prefix: "://", match: userinfoPassword},
	{prefix: "eyJ", match: jwt},
	{prefix: "-----BEGIN ", match: privateKeyBlock},
	{prefix: "sk-", boundary: true, match: run(base64URL, 20)},
	{prefix: "sk_live_", boundary: true, match: run(alnum, 16)},
	{prefix: "sk_test_", boundary: true, match: run(alnum, 16)},
	{prefix: "rk_live_", boundary: true, match: run(alnum, 16)},
	{prefix: "rk_test_", boundary: true, match: run(alnum, 16)},
	{prefix: "AIza", match: run(base64URL, 30)},
	{prefix: "ya29.", match: run(base64URL+".", 20)},
	{prefix: "npm_", boundary: true, match: run(alnum, 30)},
	{prefix: "pypi-", boundary: true, match: run(base64URL, 40)},
	{prefix: "hf_", boundary: true, match: run(alnum, 30)},
	{prefix: "bearer", fold: true, boundary: true, match: bearer},
	{prefix: "basic", fold: true, boundary: true, match: basic},
	// Values after credential names: aws_secret_access_key = …,
	// "SecretAccessKey": "…", AWS_SESSION_TOKEN=…, X-Amz-Security-Token: …,
	// "client_secret": "…", password: …, api-key=…, Signature=… (no
	// boundary: the name may end a longer one, as in GITHUB_TOKEN).
	{prefix: "secret", fold: true, nests: true, match: keyed("access", "key")},
	{prefix: "secret", fold: true, nests: true, match: keyed()},
	{prefix: "session", fold: true, nests: true, match: keyed("token")},
	{prefix: "security", fold: true, nests: true, match: keyed("token")},
	{prefix: "token", fold: true, nests: true, match: keyed()},
	{prefix: "password", fold: true, nests: true, match: keyed()},
	{prefix: "passwd", fold: true, nests: true, match: keyed()},
	{prefix: "signature", fold: true, nests: true, match: keyed()},
	{prefix: "api", fold: true, nests: true, match: keyed("key")},
	// An Authorization header written out in text (a curl command an
	// agent runs, a config file): the credential after any scheme, Token,
	// SSWS, Bot and the rest included.
	{prefix: "authorization", fold: true, match: authorization},
	// Telegram bot tokens sit in the path (/bot123456:AA…/getMe), and so
	// do Discord webhook tokens (/api/webhooks/ID/TOKEN).
	{prefix: "/bot", match: telegramToken},
	{prefix: "/api/webhooks/", match: discordWebhook},
}

// nestMargin covers what a keyed rule reads after its prefix before the
// value: "_access_key" and 8 bytes of separators.
const nestMargin = 32

// filter[k][b] has bit r set when byte k of rules[r].prefix can be b.
// TestRulesFitFilter keeps rules within the 64 bits of a filter entry.
var filter = func() (f [3][256]uint64) {
	for r, rule := range rules {
		for k := range 3 {
			c := rule.prefix[k]
			f[k][c] |= 1 << r
			if rule.fold {
				f[k][toLower(c)] |= 1 << r
				f[k][toUpper(c)] |= 1 << r
			}
		}
	}
	return f
}()

func toLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func toUpper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// byteSet is a set of bytes for token bodies.
type byteSet [256]bool

func makeSet(chars string) *byteSet {
	var set byteSet
	for i := 0; i < len(chars); i++ {
		set[chars[i]] = true
	}
	return &set
}

var (
	alnumSet     = makeSet(alnum)
	base64URLSet = makeSet(base64URL)
	base64StdSet = makeSet(base64Std)
	bearerSet    = makeSet(alnum + "-._~+/=")
	hexSet       = makeSet("0123456789abcdefABCDEF")
)

// span returns the end of the run of set bytes in s starting at i.
func (set *byteSet) span(s string, i int) int {
	for i < len(s) && set[s[i]] {
		i++
	}
	return i
}

// run matches prefix followed by at least minLen bytes of chars, and masks
// all of it.
func run(chars string, minLen int) func(s string, i, n int) (int, int) {
	set := makeSet(chars)
	return func(s string, i, n int) (int, int) {
		end := set.span(s, i+n)
		if end-(i+n) < minLen {
			return 0, 0
		}
		return i, end
	}
}

// atBoundary reports whether a token may start at s[i]: it does not continue
// a word. A letter or digit that ends an escape (\n in JSON, \u0022, %22 in a
// URL) does not count as part of a word.
func atBoundary(s string, i int) bool {
	if i == 0 || !alnumSet[s[i-1]] {
		return true
	}
	if i >= 2 && s[i-2] == '\\' {
		return true
	}
	if i >= 3 && s[i-3] == '%' && hexSet[s[i-2]] && hexSet[s[i-1]] {
		return true
	}
	return i >= 6 && s[i-6] == '\\' && s[i-5] == 'u'
}

// slackToken matches xox?- (xoxb-, xoxp-, xoxa-, xoxe-, …) and its body.
func slackToken(s string, i, _ int) (int, int) {
	if i+5 > len(s) || s[i+4] != '-' || !alnumSet[s[i+3]] {
		return 0, 0
	}
	end := alnumDashSet.span(s, i+5)
	if end-(i+5) < 10 {
		return 0, 0
	}
	return i, end
}

var alnumDashSet = makeSet(alnum + "-")

// slackWebhook masks the secret path of hooks.slack.com/services/…,
// /workflows/… and /triggers/…, keeping the host.
func slackWebhook(s string, i, n int) (int, int) {
	rest := s[i+n:]
	for _, kind := range []string{"services/", "workflows/", "triggers/"} {
		if strings.HasPrefix(rest, kind) {
			start := i + n + len(kind)
			end := pathSet.span(s, start)
			if end-start < 8 {
				return 0, 0
			}
			return start, end
		}
	}
	return 0, 0
}

var pathSet = makeSet(base64URL + "/")

// userinfoPassword matches the password of a URL's userinfo
// (postgres://app:s3cr3t@db/app): after "://", up to the authority's '@',
// the part after the first ':'. Connection strings often carry '/', '?' or
// '#' in the password unencoded (postgres://app:Xk2/9q@db), so the '@' may
// come after them, unless what follows the ':' up to them is a port
// (https://host:8443/users/@alice).
func userinfoPassword(s string, i, n int) (int, int) {
	start := i + n
	at, cut := -1, -1
	stop := min(len(s), start+maxUserinfo)
	if strings.IndexByte(s[start:stop], '@') < 0 {
		return 0, 0 // memchr is much faster than the loop below
	}
	for end := start; end < stop; end++ {
		c := s[end]
		if c <= ' ' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '\\' {
			stop = end
			break
		}
		if (c == '/' || c == '?' || c == '#') && cut < 0 {
			if at >= 0 {
				break // an authority's last '@': the password may hold '@'
			}
			cut = end
		}
		if c == '@' && (cut < 0 || at < 0) {
			at = end
			if cut >= 0 {
				break // the first '@' after a '/' in the password
			}
		}
	}
	if at < 0 {
		if stop == start+maxUserinfo && stop < len(s) {
			return 0, 0 // a later "://" looks further
		}
		// The scan ended at a character no userinfo holds, or at the end
		// of s, without an '@': so would that of any "://" before it.
		return -1, stop
	}
	colon := strings.IndexByte(s[start:at], ':')
	if colon < 0 {
		return 0, 0
	}
	pw := start + colon + 1
	if cut >= 0 && cut < at && (cut < pw || allDigits(s[pw:cut])) {
		return 0, 0
	}
	if pw == at || s[pw:at] == Mask {
		return 0, 0
	}
	return pw, at
}

// maxUserinfo bounds how far userinfoPassword looks for the '@': every
// "://" before an '@' scans up to it, so "a://a://…@" cost time quadratic in
// its length. A userinfo is a few hundred bytes at most (a token as the
// password).
const maxUserinfo = 2 << 10

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// jwt matches a JWT (header.payload.signature, base64url, the header JSON so
// starting eyJ) and the further segments of a JWE.
func jwt(s string, i, _ int) (int, int) {
	end := base64URLSet.span(s, i)
	if end-i < 10 || end >= len(s) || s[end] != '.' {
		// An "eyJ" later in the same run ends where this one does.
		return -1, end
	}
	p := end + 1
	end = base64URLSet.span(s, p)
	if end-p < 2 || end >= len(s) || s[end] != '.' {
		return -1, p
	}
	end = base64URLSet.span(s, end+1) // the signature may be empty (alg "none")
	for end+1 < len(s) && s[end] == '.' && base64URLSet[s[end+1]] {
		end = base64URLSet.span(s, end+1)
	}
	return i, end
}

// privateKeyBlock matches a PEM block whose label contains PRIVATE KEY
// (PKCS#8, RSA, EC, OPENSSH, ENCRYPTED, PGP … BLOCK): the header, the
// base64 lines that follow it and the END line. Only text shaped like key
// material is masked, so that a fake header cannot hide what comes after
// it from an approver ("echo '-----BEGIN … KEY-----'; curl … | sh"): a
// body line is a run of base64 of at least 40 characters, a shorter one
// only right before the END line or, of 16 or more, at the end of s (a
// body cut off at the inspection limit).
func privateKeyBlock(s string, i, n int) (int, int) {
	labelStart := i + n
	rest := s[labelStart:min(len(s), labelStart+100)]
	k := strings.Index(rest, "-----")
	if k < 0 || !strings.Contains(rest[:k], "PRIVATE KEY") {
		return 0, 0
	}
	end := labelStart + k + 5
	p := skipPEMHeaders(s, end)
	for {
		q := skipPEMBreaks(s, p)
		if strings.HasPrefix(s[q:], "-----END ") {
			after := q + len("-----END ")
			if f := strings.Index(s[after:min(len(s), after+100)], "-----"); f >= 0 {
				return i, after + f + 5
			}
			return i, end
		}
		line := pemLine(s, q)
		if line == q {
			return i, end
		}
		next := skipPEMBreaks(s, line)
		long := line-q >= 40
		last := strings.HasPrefix(s[next:], "-----END ")
		atEnd := line == len(s) && line-q >= 16
		if !long && !last && !atEnd {
			return i, end
		}
		end, p = line, line
	}
}

// pemLine returns the end of the base64 run at q, reading "\\/" (a slash
// escaped in JSON, as PHP writes it) as base64 too.
func pemLine(s string, q int) int {
	for {
		q = base64StdSet.span(s, q)
		if q+1 < len(s) && s[q] == '\\' && s[q+1] == '/' {
			q += 2
			continue
		}
		return q
	}
}

// skipPEMBreaks skips line breaks and spaces between PEM lines, also as
// escaped in JSON text (\n, \r).
func skipPEMBreaks(s string, p int) int {
	for p < len(s) {
		switch {
		case s[p] == '\n' || s[p] == '\r' || s[p] == ' ' || s[p] == '\t':
			p++
		case s[p] == '\\' && p+1 < len(s) && (s[p+1] == 'n' || s[p+1] == 'r'):
			p += 2
		default:
			return p
		}
	}
	return p
}

// skipPEMHeaders skips the Proc-Type and DEK-Info lines of a legacy
// encrypted PEM key.
func skipPEMHeaders(s string, p int) int {
	for {
		q := skipPEMBreaks(s, p)
		if !strings.HasPrefix(s[q:], "Proc-Type:") && !strings.HasPrefix(s[q:], "DEK-Info:") {
			return p
		}
		e := q
		for e < len(s) && s[e] != '\n' && !(s[e] == '\\' && e+1 < len(s) && s[e+1] == 'n') {
			e++
		}
		p = e
	}
}

// keyed matches the rest of a credential's name after the rule's prefix:
// words, each optionally preceded by '_' or '-', in any case. The value after
// the name is masked by keyedValue.
func keyed(words ...string) func(s string, i, n int) (int, int) {
	return func(s string, i, n int) (int, int) {
		p := i + n
		for _, w := range words {
			if p < len(s) && (s[p] == '_' || s[p] == '-') {
				p++
			}
			if len(s)-p < len(w) || !strings.EqualFold(s[p:p+len(w)], w) {
				return 0, 0
			}
			p += len(w)
		}
		return keyedValue(s, p)
	}
}

// keyedValue masks the value that starts at p, after a credential's name:
// separators (spaces, quotes, backslashes of escaped JSON, and at least one
// '=', ':' or XML's '>') and then 16 or more base64 characters.
func keyedValue(s string, p int) (int, int) {
	p, sep := afterSeparator(s, p)
	if !sep {
		return 0, 0
	}
	end := base64StdSet.span(s, p)
	if end-p < 16 {
		return 0, 0
	}
	return p, end
}

// afterSeparator skips, within 8 bytes of p, what separates a credential's
// name from its value: spaces, quotes, backslashes of escaped JSON, and at
// least one '=', ':' or XML's '>' (sep reports one).
func afterSeparator(s string, p int) (_ int, sep bool) {
	for limit := min(len(s), p+8); p < limit; p++ {
		c := s[p]
		if c == '=' || c == ':' || c == '>' {
			sep = true
		} else if c != ' ' && c != '\t' && c != '"' && c != '\'' && c != '\\' {
			break
		}
	}
	return p, sep
}

// authorization masks the credential after "Authorization" and a
// separator: the word after a scheme word, or the only word. As with
// bearer, it must look random, so prose ("authorization: the user …")
// is kept.
func authorization(s string, i, n int) (int, int) {
	p, sep := afterSeparator(s, i+n)
	if !sep {
		return 0, 0
	}
	end := bearerSet.span(s, p)
	if q := credentialStart(s, end); q >= 0 && end-p <= 30 && schemeSet.span(s, p) == end {
		// "Token 9f8e…": a scheme word, then the credential.
		p, end = q, bearerSet.span(s, q)
	}
	tok := strings.TrimRight(s[p:end], ".")
	if len(tok) >= 20 || len(tok) >= 8 && strings.ContainsFunc(tok, func(r rune) bool {
		return r < 'A' || r > 'z' || (r > 'Z' && r < 'a')
	}) {
		return p, end
	}
	return 0, 0
}

var schemeSet = makeSet(alnum + "-_")

// telegramToken masks a Telegram bot token in a path: /bot, the bot's
// number, ':' and 30 or more base64url characters.
func telegramToken(s string, i, n int) (int, int) {
	start := i + n
	digits := digitSet.span(s, start)
	if digits-start < 5 || digits >= len(s) || s[digits] != ':' {
		return 0, 0
	}
	end := base64URLSet.span(s, digits+1)
	if end-(digits+1) < 30 {
		return 0, 0
	}
	return start, end
}

// discordWebhook masks the token of a Discord webhook URL's path:
// /api/webhooks/ID/TOKEN.
func discordWebhook(s string, i, n int) (int, int) {
	id := digitSet.span(s, i+n)
	if id-(i+n) < 5 || id >= len(s) || s[id] != '/' {
		return 0, 0
	}
	end := base64URLSet.span(s, id+1)
	if end-(id+1) < 30 {
		return 0, 0
	}
	return id + 1, end
}

var digitSet = makeSet("0123456789")

// credentialStart skips the space between an auth scheme and its credential:
// blanks, or "%20" / "+" when the header was URL-encoded into a query.
func credentialStart(s string, p int) int {
	start := p
	for p < len(s) {
		switch {
		case s[p] == ' ' || s[p] == '\t' || s[p] == '+':
			p++
		case strings.HasPrefix(s[p:], "%20"):
			p += 3
		default:
			if p == start {
				return -1
			}
			return p
		}
	}
	return -1
}

// bearer masks the token after "Bearer ". The word alone is common in
// prose ("bearer of bad news"), so the token must look random: 8 or more
// characters with a digit or punctuation inside, or 20 or more letters.
func bearer(s string, i, n int) (int, int) {
	p := credentialStart(s, i+n)
	if p < 0 {
		return 0, 0
	}
	end := bearerSet.span(s, p)
	tok := strings.TrimRight(s[p:end], ".")
	if len(tok) >= 20 || len(tok) >= 8 && strings.ContainsFunc(tok, func(r rune) bool {
		return r < 'A' || r > 'z' || (r > 'Z' && r < 'a')
	}) {
		return p, end
	}
	return 0, 0
}

// basic masks the credential after "Basic " when it decodes to user:password.
func basic(s string, i, n int) (int, int) {
	p := credentialStart(s, i+n)
	if p < 0 {
		return 0, 0
	}
	end := base64StdSet.span(s, p)
	if end-p < 4 {
		return 0, 0
	}
	if !decodesWithColon(strings.TrimRight(s[p:end], "=")) {
		return 0, 0
	}
	return p, end
}

// decodesWithColon reports whether enc, unpadded standard base64, is valid
// and decodes to bytes that include ':'. It decodes in place of
// encoding/base64 so that prose after "Basic" costs no allocation.
func decodesWithColon(enc string) bool {
	if len(enc)%4 == 1 {
		return false
	}
	colon := false
	var acc uint32
	bits := 0
	for i := 0; i < len(enc); i++ {
		v := strings.IndexByte(base64Alphabet, enc[i])
		if v < 0 {
			return false
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			if byte(acc>>bits) == ':' {
				colon = true
			}
		}
	}
	return colon
}

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
