package strs

import (
	"strings"
	"testing"
)

func TestSame(t *testing.T) {
	a := "orders"
	b := strings.Clone(a) // equal bytes, another address
	cases := []struct {
		name string
		x, y string
		want bool
	}{
		{"one string", a, a, true},
		{"a copy", a, b, false},
		{"a prefix at the same address", a, a[:3], false},
		{"both empty", "", "", true},
		{"different strings", a, "payments", false},
	}
	for _, c := range cases {
		if got := Same(c.x, c.y); got != c.want {
			t.Errorf("%s: Same(%q, %q) = %v, want %v", c.name, c.x, c.y, got, c.want)
		}
	}
}
