package integration

import (
	"fmt"
	"strings"
	"testing"
)

// A crashed process's log: app lines, then Go's crash header and every goroutine's stack. The
// header must come out whole however long the stacks are; a log without a crash gives nothing.
func TestCrashHeader(t *testing.T) {
	var stacks strings.Builder
	for i := range 200 {
		fmt.Fprintf(&stacks, "goroutine %d [select]:\nmain.f()\n\t/x.go:%d\n\n", i+2, i)
	}
	log := "time=1 level=INFO msg=running\nmetrics {}\n" +
		"panic: runtime error: invalid memory address or nil pointer dereference\n" +
		"[signal SIGSEGV: segmentation violation code=0x1 addr=0x46 pc=0x84990e]\n\n" +
		"goroutine 1 [running]:\nkgo.(*Record).userSize(...)\n" + stacks.String()
	got := crashHeader(log)
	if !strings.HasPrefix(got, "panic: runtime error: invalid memory address") ||
		!strings.Contains(got, "[signal SIGSEGV") || !strings.Contains(got, "kgo.(*Record).userSize") {
		t.Fatalf("crash header:\n%s", got)
	}
	if strings.Contains(got, "goroutine 60 ") || strings.Contains(got, "msg=running") {
		t.Fatalf("crash header holds more than the crash's first lines:\n%s", got)
	}
	fatal := "metrics {}\nfatal error: runtime: out of memory\n\nruntime stack:\n" + stacks.String()
	if got := crashHeader(fatal); !strings.HasPrefix(got, "fatal error: runtime: out of memory\n") {
		t.Fatalf("crash header of a fatal error:\n%s", got)
	}
	if got := crashHeader("time=1 level=WARN msg=\"skipped a record\" error=\"riffle: process panic at node x\"\n"); got != "" {
		t.Fatalf("a log without a crash gave a header:\n%s", got)
	}
}
