package controllers

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// objectsMetricName counts the manager's objects by their kstatus conditions.
const objectsMetricName = "hangar_objects"

// objectsScrapeTimeout bounds a scrape's wait for the cache: right after a replica becomes leader its
// informers may still be listing, and a scrape must not hang for it.
const objectsScrapeTimeout = 3 * time.Second

// NewObjectsCollector returns hangar_objects{kind,ready,reason,stalled} for the manager's metrics
// registry: how many UserApps and UserMachines are in each state, counted from mgr's cache at every
// scrape. It needs no bookkeeping in the passes and is right from the first scrape after a restart.
// The cache holds the manager's shard alone (--namespace, --selector), so each shard counts its own
// objects; a replica that is not the leader reports none, so that a sum over replicas counts each
// object once.
func NewObjectsCollector(mgr ctrl.Manager) prometheus.Collector {
	return newObjectsCollector(mgr.GetCache(), mgr.Elected(), mgr.GetLogger())
}

// objectsCollector is the prometheus.Collector behind hangar_objects.
type objectsCollector struct {
	cache   client.Reader
	elected <-chan struct{}
	log     logr.Logger
	desc    *prometheus.Desc
}

func newObjectsCollector(cache client.Reader, elected <-chan struct{}, log logr.Logger) *objectsCollector {
	return &objectsCollector{
		cache: cache, elected: elected, log: log.WithName("metrics"),
		desc: prometheus.NewDesc(objectsMetricName,
			"UserApps and UserMachines of this manager's shard, by kind, the Ready condition's status (True, False, Unknown) and reason, and whether the Stalled condition is True (only someone acting changes them). Reported by the leader only.",
			[]string{"kind", "ready", "reason", "stalled"}, nil),
	}
}

func (c *objectsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// objectState is one series of hangar_objects. The labels take values from fixed sets (two kinds,
// three statuses, the API's condition reasons), so the series count does not grow with the fleet.
type objectState struct {
	kind, ready, reason, stalled string
}

func (c *objectsCollector) Collect(ch chan<- prometheus.Metric) {
	select {
	case <-c.elected:
	default:
		return // a standby: its cache does not watch the two kinds, and the leader reports them
	}
	ctx, cancel := context.WithTimeout(context.Background(), objectsScrapeTimeout)
	defer cancel()
	counts := map[objectState]int{}
	// The objects are only read, so the cache's own copies are used instead of deep copies.
	var apps flyv1alpha1.UserAppList
	if err := c.cache.List(ctx, &apps, client.UnsafeDisableDeepCopy); err != nil {
		// Failing the scrape would hide every other metric; the series are left out instead.
		c.log.Error(err, "Listing UserApps for hangar_objects")
		return
	}
	for i := range apps.Items {
		counts[stateOf(kindUserApp, apps.Items[i].Status.Conditions)]++
	}
	var machines flyv1alpha1.UserMachineList
	if err := c.cache.List(ctx, &machines, client.UnsafeDisableDeepCopy); err != nil {
		c.log.Error(err, "Listing UserMachines for hangar_objects")
		return
	}
	for i := range machines.Items {
		counts[stateOf(kindUserMachine, machines.Items[i].Status.Conditions)]++
	}
	for s, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), s.kind, s.ready, s.reason, s.stalled)
	}
}

// stateOf reads an object's series from its conditions. An object no pass has looked at yet has no
// Ready condition: status Unknown, reason empty.
func stateOf(kind string, conditions []metav1.Condition) objectState {
	s := objectState{kind: kind, ready: string(metav1.ConditionUnknown), stalled: "false"}
	for i := range conditions {
		switch cond := &conditions[i]; cond.Type {
		case flyv1alpha1.ReadyCondition:
			s.ready, s.reason = string(cond.Status), cond.Reason
		case flyv1alpha1.StalledCondition:
			if cond.Status == metav1.ConditionTrue {
				s.stalled = "true"
			}
		}
	}
	return s
}
