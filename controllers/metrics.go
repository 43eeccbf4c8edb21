package controllers

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics hangar's controllers export, next to controller-runtime's own reconcile metrics and the
// Fly client's call metrics. No label carries an object or app name, so cardinality stays fixed.
var (
	reconcileOutcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "hangar",
		Name:      "reconcile_outcomes_total",
		Help:      "Reconcile passes by kind and outcome (ready, waiting, throttled, conflict, precondition, unauthorized, rejected, error).",
	}, []string{"kind", "outcome"})

	timeToReady = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "hangar",
		Name:      "time_to_ready_seconds",
		Help:      "Time from an object's creation to its first Ready=True.",
		Buckets:   []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800},
	}, []string{"kind"})

	driftCorrections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "hangar",
		Name:      "drift_corrections_total",
		Help:      "Out-of-band changes on Fly that hangar corrected, by kind and what was corrected (recreated, config, power, app).",
	}, []string{"kind", "what"})

	registerMetricsOnce sync.Once
)

// registerMetrics adds the controllers' metrics to controller-runtime's registry (served on the
// manager's metrics endpoint). Safe to call more than once.
func registerMetrics() {
	registerMetricsOnce.Do(func() {
		ctrlmetrics.Registry.MustRegister(reconcileOutcomes, timeToReady, driftCorrections)
	})
}
