package flyapi

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the client's Prometheus collectors. Labels are the action and a status class only:
// never a token, an app or a machine (unbounded cardinality, and app names can be personal data).
type metrics struct {
	calls           *prometheus.CounterVec
	latency         *prometheus.HistogramVec
	limiterWaits    *prometheus.CounterVec
	limiterWaitTime *prometheus.CounterVec
	limiterRefusals *prometheus.CounterVec
	rateLimited     *prometheus.CounterVec
}

const metricsNamespace = "hangar_fly_api"

// Status classes of the calls counter.
const (
	class2xx   = "2xx"
	class4xx   = "4xx"
	class5xx   = "5xx"
	classOther = "other" // 1xx/3xx: unexpected for this API
	classError = "error" // no HTTP answer
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "calls_total",
			Help:      "Calls to the Fly Machines API, one per HTTP request sent (each retry counts), by action and status class (2xx, 4xx, 5xx, other = 1xx/3xx, error = no answer).",
		}, []string{"action", "status_class"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Name:      "call_duration_seconds",
			Help:      "Latency of each HTTP request to the Fly Machines API, by action.",
			Buckets:   []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"action"}),
		limiterWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "limiter_waits_total",
			Help:      "Requests that waited on the client-side rate limiter, by action.",
		}, []string{"action"}),
		limiterWaitTime: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "limiter_wait_seconds_total",
			Help:      "Time spent waiting on the client-side rate limiter, by action.",
		}, []string{"action"}),
		limiterRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "limiter_refusals_total",
			Help:      "Calls refused by the client-side rate limiter because the wait would exceed the maximum, by action.",
		}, []string{"action"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "rate_limited_total",
			Help:      "Answers 429 Too Many Requests from Fly, by action (each also counted in calls_total as 4xx): the client waits and resends, but a steady rate means Fly's limits for the org are tighter than the client's limiter.",
		}, []string{"action"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.calls, err = register(reg, m.calls)
	if err != nil {
		return nil, err
	}
	m.latency, err = register(reg, m.latency)
	if err != nil {
		return nil, err
	}
	m.limiterWaits, err = register(reg, m.limiterWaits)
	if err != nil {
		return nil, err
	}
	m.limiterWaitTime, err = register(reg, m.limiterWaitTime)
	if err != nil {
		return nil, err
	}
	m.limiterRefusals, err = register(reg, m.limiterRefusals)
	if err != nil {
		return nil, err
	}
	m.rateLimited, err = register(reg, m.rateLimited)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under the same name, so
// that several clients can share one registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

func statusClass(status int) string {
	switch {
	case status >= 200 && status < 300:
		return class2xx
	case status >= 400 && status < 500:
		return class4xx
	case status >= 500:
		return class5xx
	default:
		return classOther
	}
}

func (m *metrics) observeRequest(action, class string, elapsed time.Duration) {
	m.calls.WithLabelValues(action, class).Inc()
	m.latency.WithLabelValues(action).Observe(elapsed.Seconds())
}

func (m *metrics) observeLimiterWait(action string, wait time.Duration) {
	m.limiterWaits.WithLabelValues(action).Inc()
	m.limiterWaitTime.WithLabelValues(action).Add(wait.Seconds())
}

func (m *metrics) observeLimiterRefusal(action string) {
	m.limiterRefusals.WithLabelValues(action).Inc()
}

func (m *metrics) observeRateLimited(action string) {
	m.rateLimited.WithLabelValues(action).Inc()
}
