package scale_test

import (
	"strings"
	"testing"
)

// TestParseMetrics runs the reader over the shapes the manager's endpoint serves.
func TestParseMetrics(t *testing.T) {
	const text = `# HELP go_memstats_heap_inuse_bytes Number of heap bytes that are in use.
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 1.2345678e+07
rest_client_requests_total{code="200",host="127.0.0.1:4321",method="GET"} 40
rest_client_requests_total{code="200",host="127.0.0.1:4321",method="PATCH"} 7
rest_client_requests_total{code="409",host="127.0.0.1:4321",method="PATCH"} 2
controller_runtime_reconcile_total{controller="usermachine",result="success"} 30 1700000000000
controller_runtime_reconcile_total{controller="userapp",result="requeue_after"} 5
odd{path="a\"b\\c, }",x="1"} +Inf
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		match map[string]string
		want  float64
	}{
		{"go_memstats_heap_inuse_bytes", nil, 12345678},
		{"rest_client_requests_total", nil, 49},
		{"rest_client_requests_total", map[string]string{"method": "PATCH"}, 9},
		{"rest_client_requests_total", map[string]string{"method": "PATCH", "code": "409"}, 2},
		{"controller_runtime_reconcile_total", nil, 35},
		{"controller_runtime_reconcile_total", map[string]string{"controller": "userapp"}, 5},
		{"absent", nil, 0},
	} {
		if got := m.sum(tc.name, tc.match); got != tc.want {
			t.Errorf("sum(%s, %v) = %g, want %g", tc.name, tc.match, got, tc.want)
		}
	}
	if got := m.byLabel("rest_client_requests_total", "method"); got["GET"] != 40 || got["PATCH"] != 9 || len(got) != 2 {
		t.Errorf("byLabel = %v", got)
	}
	if !m.has("odd") || m.has("absent") {
		t.Error("has is wrong")
	}
	for _, s := range m {
		if s.name == "odd" && (s.labels["path"] != `a"b\c, }` || s.labels["x"] != "1") {
			t.Errorf("escaped label values read as %q", s.labels)
		}
	}

	for _, bad := range []string{"novalue", `m{a="1"`, `m{a=1} 2`, `m{a="1"} x`} {
		if _, err := parseMetrics(strings.NewReader(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
