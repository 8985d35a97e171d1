package policy

import (
	"strconv"
	"strings"
	"testing"
)

// TestDecisionCacheByteBudget: distinct large keys (a request body the
// policy reads whole, up to maxKeyBytes each) must not pin more than
// maxCacheBytes, however many arrive.
func TestDecisionCacheByteBudget(t *testing.T) {
	c := &decisionCache{entries: map[string]cachedDecision{}}
	big := strings.Repeat("x", maxKeyBytes)
	msg := strings.Repeat("m", 4096)
	for i := range maxCacheEntries {
		c.put(big+strconv.Itoa(i), cachedDecision{verdict: VerdictDeny, reasons: []Reason{{Message: msg, ID: "R-1"}}})
		if c.bytes > maxCacheBytes {
			t.Fatalf("after %d puts the cache holds %d bytes, over its budget of %d", i+1, c.bytes, maxCacheBytes)
		}
	}
	var held int
	for k, d := range c.entries {
		held += d.size(k)
	}
	if held != c.bytes {
		t.Fatalf("cache counts %d bytes, its entries cost %d", c.bytes, held)
	}
	if len(c.entries) != len(c.order) {
		t.Fatalf("%d entries, %d in the eviction order", len(c.entries), len(c.order))
	}
	if len(c.entries) < maxCacheBytes/(2*(maxKeyBytes+4096+2*entryOverhead+10)) {
		t.Fatalf("only %d entries held: eviction emptied more than it had to", len(c.entries))
	}
	// The newest entry survives; the oldest went.
	if _, ok := c.get([]byte(big + strconv.Itoa(maxCacheEntries-1))); !ok {
		t.Fatal("the newest entry was evicted")
	}
	if _, ok := c.get([]byte(big + "0")); ok {
		t.Fatal("the oldest entry is still held")
	}

	// Small entries still fill the cache up to its count.
	c = &decisionCache{entries: map[string]cachedDecision{}}
	for i := range maxCacheEntries {
		c.put(strconv.Itoa(i), cachedDecision{verdict: VerdictAllow})
	}
	if len(c.entries) != maxCacheEntries {
		t.Fatalf("%d small entries held, want %d", len(c.entries), maxCacheEntries)
	}

	// One entry past a sixty-fourth of the budget is not cached at all.
	c.put("huge", cachedDecision{verdict: VerdictDeny, reasons: []Reason{{Message: strings.Repeat("m", maxCacheBytes/64)}}})
	if _, ok := c.get([]byte("huge")); ok {
		t.Fatal("an entry of a sixty-fourth of the budget was cached")
	}
	if len(c.entries) != maxCacheEntries {
		t.Fatal("refusing an entry evicted others")
	}
}
