package benchenv

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestFindRootFrom(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module github.com/rifflestream/riffle\n\ngo 1.24\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A nested module of another name must be skipped.
	other := filepath.Join(root, "examples", "x")
	if err := os.MkdirAll(filepath.Join(other, "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "go.mod"), []byte("module github.com/rifflestream/riffle/examples/x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := findRootFrom(filepath.Join(other, "deep"))
	if err != nil || got != root {
		t.Fatalf("findRootFrom = %q, %v; want %q", got, err, root)
	}
	if _, err := findRootFrom(t.TempDir()); err == nil {
		t.Fatal("findRootFrom outside the repository: no error")
	}
}

func TestMemTotalGiB(t *testing.T) {
	in := "MemFree:         1000 kB\nMemTotal:       24379392 kB\n"
	if got := memTotalGiB(in); got != "23.2" { // 24379392 / 1048576 = 23.25... -> "23.2"
		t.Fatalf("memTotalGiB = %q, want 23.2", got)
	}
	if got := memTotalGiB("nothing here"); got != "unknown" {
		t.Fatalf("memTotalGiB without MemTotal = %q", got)
	}
}

func TestExternal(t *testing.T) {
	b := External(" a:1, b:2,,")
	if !slices.Equal(b.Addrs, []string{"a:1", "b:2"}) || b.Started() {
		t.Fatalf("External = %+v", b)
	}
	if err := b.Stop(); err != nil {
		t.Fatalf("Stop of an external broker: %v", err)
	}
}

func TestPomKafkaVersion(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pom.xml")
	if err := os.WriteFile(p, []byte("<project><properties><kafka.version>9.8.7</kafka.version></properties></project>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := PomKafkaVersion(p); got != "9.8.7" {
		t.Fatalf("PomKafkaVersion = %q", got)
	}
	if got := PomKafkaVersion(p + ".missing"); got != "unknown" {
		t.Fatalf("PomKafkaVersion of a missing file = %q", got)
	}
}
