//go:build race

package audit

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = true
