// Package strs has string helpers for Riffle's per-record paths.
package strs

import "unsafe"

// Same reports whether a and b are the same string in memory: one pointer comparison, where ==
// compares the bytes of two strings of equal length in a call. Equal strings at different
// addresses are reported different.
//
// The per-record paths use it to skip storing a topic into a heap object that already holds it:
// while the garbage collector marks, every pointer stored into the heap goes through a write
// barrier, and the records of one partition carry the same topic (the client decodes it once per
// fetch response, so a false "different" only costs the store).
func Same(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}
