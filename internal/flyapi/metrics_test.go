package flyapi

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// counterValues returns family name → "label=value,…" → value for the counters and histogram
// counts in reg.
func counterValues(t *testing.T, reg *prometheus.Registry) map[string]map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, family := range families {
		values := map[string]float64{}
		for _, metric := range family.GetMetric() {
			key := labelKey(metric.GetLabel())
			switch family.GetType() {
			case dto.MetricType_COUNTER:
				values[key] = metric.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				values[key] = float64(metric.GetHistogram().GetSampleCount())
			}
		}
		out[family.GetName()] = values
	}
	return out
}

func labelKey(labels []*dto.LabelPair) string {
	key := ""
	for i, l := range labels {
		if i > 0 {
			key += ","
		}
		key += l.GetName() + "=" + l.GetValue()
	}
	return key
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := &script{t: t, steps: []step{limited429("0"), ok200, notFound404, fail503, dropped, ok200, ok200, ok200, ok200}}
	c, _ := newTestClient(t, srv, func(o *Options) {
		o.Metrics = reg
		o.Limiter = NewLimiter(PublishedLimits())
	})
	ctx := context.Background()
	if _, err := c.GetMachine(ctx, "app", "m1"); err != nil {
		t.Fatalf("get answered 429, then 200: %v", err)
	}
	if _, err := c.GetMachine(ctx, "app", "m1"); !IsNotFound(err) {
		t.Fatalf("get answered 404: error %v, want not found", err)
	}
	if _, err := c.CreateMachine(ctx, "app", CreateMachineRequest{}); !hasStatus(err, http.StatusServiceUnavailable) {
		t.Fatalf("create answered 503 (not retried): error %v, want the 503", err)
	}
	var transportErr *TransportError
	if _, err := c.CreateMachine(ctx, "app", CreateMachineRequest{}); !errors.As(err, &transportErr) {
		t.Fatalf("create dropped (not retried): error %v, want a TransportError", err)
	}
	for i := 0; i < 4; i++ { // the fourth create waits on the limiter
		if _, err := c.CreateMachine(ctx, "app2", CreateMachineRequest{}); err != nil {
			t.Fatalf("create %d on app2: %v", i+1, err)
		}
	}

	// A second client on the same registry shares the collectors instead of failing.
	if _, err := New(Options{Token: StaticToken("t"), Metrics: reg}); err != nil {
		t.Fatalf("second client on one registry: %v", err)
	}

	got := counterValues(t, reg)
	want := map[string]map[string]float64{
		"hangar_fly_api_calls_total": {
			"action=get_machine,status_class=2xx":      1,
			"action=get_machine,status_class=4xx":      2, // the 429 (resent) and the 404
			"action=create_machine,status_class=5xx":   1,
			"action=create_machine,status_class=error": 1,
			"action=create_machine,status_class=2xx":   4,
		},
		"hangar_fly_api_call_duration_seconds": {
			"action=get_machine":    3,
			"action=create_machine": 6,
		},
		"hangar_fly_api_limiter_waits_total":        {"action=create_machine": 1},
		"hangar_fly_api_limiter_wait_seconds_total": {"action=create_machine": 1},
		"hangar_fly_api_rate_limited_total":         {"action=get_machine": 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}
