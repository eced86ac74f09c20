//go:build !wasip1

package vigie

// On platforms other than wasip1 the SDK has no host: logging is discarded.
// The accessors are still usable, which lets their logic be tested
// natively.
func hostLog(Level, string) {}
