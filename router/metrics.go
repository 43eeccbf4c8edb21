package router

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Listener names a router listener, as the "listener" metric label.
type Listener int

const (
	// ListenerPublic serves end users (Fly services 80/443).
	ListenerPublic Listener = iota
	// ListenerManagement serves the platform's management calls (Fly service 9090, private).
	ListenerManagement
	listenerCount
)

func (l Listener) String() string {
	if l == ListenerManagement {
		return "management"
	}
	return "public"
}

// outcome is how a request was answered, as the "outcome" metric label.
type outcome int

const (
	// checkPassed is what a check on a request returns when the request may go on. It is not a way
	// a request is answered: it has no metric series and no answer, and being the zero value, a
	// check that forgets to say why it refused cannot pass for a replay.
	checkPassed outcome = iota
	outcomeReplayed
	outcomeNotFound
	outcomeNotReady
	outcomeUnauthorized
	outcomeForbidden
	outcomeTooLarge
	outcomeBadRequest
	outcomeMisdirected
	outcomeAuthUnavailable
	outcomeReplayFailed
	outcomeCount
)

var outcomeNames = [outcomeCount]string{
	outcomeReplayed:        "replayed",
	outcomeNotFound:        "not_found",
	outcomeNotReady:        "not_ready",
	outcomeUnauthorized:    "unauthorized",
	outcomeForbidden:       "forbidden",
	outcomeTooLarge:        "too_large",
	outcomeBadRequest:      "bad_request",
	outcomeMisdirected:     "misdirected",
	outcomeAuthUnavailable: "auth_unavailable",
	outcomeReplayFailed:    "replay_failed",
}

func (o outcome) String() string { return outcomeNames[o] }

// Metrics are the router's Prometheus metrics. Labels are bounded (listener, outcome): never a
// host, an app or a machine, so a million users do not make a million series.
type Metrics struct {
	// Children are resolved once, so the request path only increments and observes.
	requests [listenerCount][outcomeCount]prometheus.Counter
	latency  [listenerCount]prometheus.Observer

	indexRoutes     prometheus.Gauge
	hostConflicts   prometheus.Gauge
	skippedObjects  prometheus.Gauge
	rebuildDuration prometheus.Histogram
	sourceRestarts  prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (skipped when reg is nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hangar_router_requests_total",
		Help: "Requests answered by the router, by listener and outcome (replayed, not_found, not_ready, unauthorized, forbidden, too_large, bad_request, misdirected, auth_unavailable, replay_failed).",
	}, []string{"listener", "outcome"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hangar_router_request_duration_seconds",
		Help:    "Time the router's handler took to answer, by listener.",
		Buckets: []float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.025, 0.1, 1},
	}, []string{"listener"})
	m := &Metrics{
		indexRoutes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hangar_router_index_routes",
			Help: "Hosts in the route index now published.",
		}),
		hostConflicts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hangar_router_host_conflicts",
			Help: "Host claims that lost to another object's claim of the same host in the published index.",
		}),
		skippedObjects: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hangar_router_index_skipped_objects",
			Help: "Objects not routed because a Fly name in their status cannot go into a replay.",
		}),
		rebuildDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hangar_router_index_rebuild_duration_seconds",
			Help:    "Time taken to build and publish a route index.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 4, 10),
		}),
		sourceRestarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hangar_router_source_restarts_total",
			Help: "Fresh informer caches started because the Kubernetes API answered again after being unreachable.",
		}),
	}
	for l := Listener(0); l < listenerCount; l++ {
		m.latency[l] = latency.WithLabelValues(l.String())
		for o := outcomeReplayed; o < outcomeCount; o++ {
			m.requests[l][o] = requests.WithLabelValues(l.String(), o.String())
		}
	}
	if reg != nil {
		reg.MustRegister(requests, latency, m.indexRoutes, m.hostConflicts, m.skippedObjects, m.rebuildDuration, m.sourceRestarts)
	}
	return m
}

func (m *Metrics) observeRequest(l Listener, o outcome, took time.Duration) {
	m.requests[l][o].Inc()
	m.latency[l].Observe(took.Seconds())
}

func (m *Metrics) observeIndex(ix *Index, took time.Duration) {
	m.indexRoutes.Set(float64(ix.Routes()))
	m.hostConflicts.Set(float64(ix.conflicts))
	m.skippedObjects.Set(float64(ix.skipped))
	m.rebuildDuration.Observe(took.Seconds())
}
