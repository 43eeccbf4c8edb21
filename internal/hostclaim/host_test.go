package hostclaim

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalize(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	tests := []struct {
		in   string
		want string // empty: ErrInvalidHost
	}{
		{"alice.example.com", "alice.example.com"},
		{"alice.example.com:8080", "alice.example.com"},
		{"alice.example.com:", "alice.example.com"},
		{"alice.example.com.", "alice.example.com"},
		{"alice.example.com.:443", "alice.example.com"},
		{"ALICE.Example.COM", "alice.example.com"},
		{"localhost", "localhost"},
		{"10.0.0.1:80", "10.0.0.1"},
		{"r3---sn-apo3qvuoxuxbt-j5pe.example.com", "r3---sn-apo3qvuoxuxbt-j5pe.example.com"},
		{"bücher.example.com", "xn--bcher-kva.example.com"},
		{"BÜCHER.example.com:80", "xn--bcher-kva.example.com"},
		{"xn--bcher-kva.example.com", "xn--bcher-kva.example.com"},
		{"XN--BCHER-KVA.example.com", "xn--bcher-kva.example.com"},
		{"ｅｘａｍｐｌｅ.com", "example.com"},       // full-width letters map to ASCII
		{"example。com", "example.com"},       // an ideographic full stop is a dot
		{"münchen.de。", "xn--mnchen-3ya.de"}, // and a trailing one is dropped
		{"[::1]", "[::1]"},
		{"[::1]:8080", "[::1]"},
		{"[2001:DB8::1]", "[2001:db8::1]"},
		{long63 + ".com", long63 + ".com"},
		{strings.Repeat("a.", 126) + "a", strings.Repeat("a.", 126) + "a"}, // 253 characters
		{"", ""},
		{".", ""},
		{":80", ""},
		{"alice..example.com", ""},
		{".alice.example.com", ""},
		{"alice.example.com..", ""},
		{"-alice.example.com", ""},
		{"alice-.example.com", ""},
		{"alice_bob.example.com", ""},
		{"alice example.com", ""},
		{"alice.example.com:http", ""},
		{"alice.example.com:123456", ""},
		{"alice.example.com:80:80", ""},
		{"a:b:c", ""},
		{strings.Repeat("a", 64) + ".com", ""},
		{strings.Repeat("a.", 127) + "a", ""}, // 255 characters
		{"xn--.example.com", ""},
		{"xn--abc-.example.com", ""},
		{"xn--ls8h.example.com", "xn--ls8h.example.com"}, // a valid punycode label (an emoji) passes as given
		{"xn--a.example.com", ""},                        // decodes to ASCII: refused by IDNA
		{"[::1", ""},
		{"[::1]x", ""},
		{"[1.2.3.4]", ""},
		{"[fe80::1%eth0]", ""},
		{"alice.example.com\x00", ""},
		{"\xff\xfe.example.com", ""},
		{"ex\u200dample.com", ""}, // a zero-width joiner outside its allowed context
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if tt.want == "" {
			if !errors.Is(err, ErrInvalidHost) {
				t.Errorf("Normalize(%q) = %q, %v; want ErrInvalidHost", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestCanonicalHostKey(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"alice.example.com", "alice.example.com", true},
		{"alice.example.com:443", "alice.example.com", true},
		{"alice.example.com.", "alice.example.com", true},
		{"10.0.0.1", "10.0.0.1", true},
		// Everything below is left to Normalize.
		{"Alice.example.com", "", false},
		{"bücher.example.com", "", false},
		{"xn--bcher-kva.example.com", "", false},
		{"[::1]", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := CanonicalKey(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("CanonicalKey(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzNormalize checks the properties the index relies on for any input: no panic; the result
// is canonical and a fixed point; and the allocation-free fast path never disagrees with the full
// normalisation.
func FuzzNormalize(f *testing.F) {
	for _, seed := range []string{
		"alice.example.com", "ALICE.example.com.:8080", "bücher.example.com", "xn--bcher-kva.example.com",
		"[::1]:80", "[2001:DB8::1]", "a..b", "-a.b", "a_b", "ｅｘａｍｐｌｅ.com", "example。com。", "xn--a",
		"r3---sn.example.com", "ab--cd.xn--mnchen-3ya.de", "\xff", "a:1:2", strings.Repeat("a.", 127),
		"ß.example", "ς.example", "xn--zca.example", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629.example",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, host string) {
		got, err := Normalize(host)
		fast, fastOK := CanonicalKey(host)
		if fastOK {
			if err != nil || got != fast {
				t.Fatalf("fast path says %q is %q, Normalize says %q, %v", host, fast, got, err)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidHost) {
				t.Fatalf("Normalize(%q) error %v is not ErrInvalidHost", host, err)
			}
			return
		}
		if !utf8.ValidString(got) || len(got) > maxHostLength+2 {
			t.Fatalf("Normalize(%q) = %q: not a short ASCII host", host, got)
		}
		if !strings.HasPrefix(got, "[") && !validHostName(got, true) {
			t.Fatalf("Normalize(%q) = %q, which is not canonical", host, got)
		}
		again, err := Normalize(got)
		if err != nil || again != got {
			t.Fatalf("Normalize is not idempotent: %q -> %q -> %q, %v", host, got, again, err)
		}
		if k, ok := CanonicalKey(got); !strings.HasPrefix(got, "[") && !strings.Contains(got, punycodePrefix) && (!ok || k != got) {
			t.Fatalf("canonical %q (from %q) misses the fast path", got, host)
		}
	})
}
