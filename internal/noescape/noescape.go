// Package noescape hides a pointer from the compiler's escape analysis, for Riffle's per-record
// paths.
package noescape

import "unsafe"

// Ptr returns p, hidden from escape analysis: a variable whose address only reaches Ptr stays
// on the caller's stack even when the result is passed to an interface method, which escape
// analysis cannot see through and would otherwise move the variable to the heap for (an
// allocation per call). Stores into a stack variable cost no write barrier either, where a
// record kept in a heap object pays one per pointer stored while the garbage collector marks.
//
// What the variable points to is not hidden: escape analysis still sees it leak (see never), so
// a slice a caller builds and puts into the variable is on the heap, as a driver that produces
// it asynchronously needs; hiding it too made a changelog record's value a stack slice, which
// the producer read after the frame was gone (TestAdvancedStreamTimeSurvivesARestart caught it).
//
// Sound only if nothing keeps the result, or a pointer derived from it, past the caller's
// return: every callee that gets it must copy what it keeps. The result is a typed pointer in
// the callees' frames, so the garbage collector finds the variable through it and a stack copy
// adjusts it, as for any pointer to a stack variable. The value goes through a uintptr
// variable, which escape analysis does not follow, and back through memory rather than a
// uintptr-to-pointer conversion (so that neither vet nor -race's checkptr objects); nothing in
// between can move the stack, since Ptr is inlined and calls nothing. The standard library
// hides pointers the same way (internal/abi.NoEscape, used by strings.Builder).
//
//go:nosplit
func Ptr[T any](p *T) *T {
	if never {
		escaped = *p // never runs; see never
	}
	x := uintptr(unsafe.Pointer(p))
	return *(**T)(unsafe.Pointer(&x))
}

// never is never true, but the compiler cannot know it: the store into escaped it guards makes
// escape analysis treat whatever *p points to as escaping (Ptr's parameter leaks its content,
// not itself), so only the variable p points to stays on the stack.
var never bool

var escaped any
