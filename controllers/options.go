package controllers

import (
	"hash/fnv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hangar-dev/hangar/internal/activity"
)

// Options are the manager-wide settings the reconcilers share.
type Options struct {
	// DefaultOrg is the Fly org of UserApps that do not name one.
	DefaultOrg string
	// DefaultRegion is the region of UserMachines that do not name one.
	DefaultRegion string
	// AppNamePrefix starts every derived Fly app name (UserApps without spec.appName).
	AppNamePrefix string
	// DriftInterval is how often a settled object is read back from Fly to catch out-of-band
	// changes; each object's interval is jittered by ±10% so reads spread out.
	DriftInterval time.Duration
	// UnauthorizedRetry is how long to wait after Fly refused the token before trying again.
	UnauthorizedRetry time.Duration
	// TransitionPoll is how soon a machine in a transient state (starting, stopping...) is read
	// again.
	TransitionPoll time.Duration
	// MaxConcurrentReconciles bounds the parallel reconciles per kind.
	MaxConcurrentReconciles int
	// ConsistencyWindow bounds how long Fly may take to show a write in its lists and reads (its
	// read side lags behind writes). A create whose answer was lost is looked for this long before
	// hangar concludes it failed and creates again; a deletion waits this long after a lost create
	// before it trusts the list of what to destroy.
	ConsistencyWindow time.Duration
	// RouterBaseDomain must equal the router's --base-domain: a UserApp's spec.routing.subdomain
	// claims <subdomain>.<RouterBaseDomain>. Empty: subdomains claim nothing, as in the router.
	RouterBaseDomain string
	// KeyRotationOverlap is how long an app's previous keys stay valid after a rotation: long
	// enough for its machines to be updated and its coordinator to read the new management token.
	KeyRotationOverlap time.Duration
	// Shard selects, by label, the UserApps and UserMachines this manager reconciles (nil: all);
	// the manager's cache must hold the same objects (ShardCacheOptions). A user's UserApp and
	// UserMachines must be in one shard: a machine whose app is outside it waits (WaitingForApp).
	Shard labels.Selector
	// ActivityNamespace holds the routers' activity Leases, which idle timeouts count from
	// (activity.DefaultNamespace when empty); the manager's cache must hold them there
	// (ActivityCacheOptions).
	ActivityNamespace string
	// Now tells the time idle timeouts are measured with (time.Now when nil); tests move it.
	Now func() time.Time
}

// Defaults used for unset Options fields.
const (
	DefaultDriftInterval      = 5 * time.Minute
	DefaultUnauthorizedRetry  = time.Minute
	DefaultTransitionPoll     = 2 * time.Second
	DefaultConcurrency        = 8
	DefaultConsistencyWindow  = 30 * time.Second
	DefaultKeyRotationOverlap = 10 * time.Minute
)

func (o Options) withDefaults() Options {
	if o.DriftInterval <= 0 {
		o.DriftInterval = DefaultDriftInterval
	}
	if o.UnauthorizedRetry <= 0 {
		o.UnauthorizedRetry = DefaultUnauthorizedRetry
	}
	if o.TransitionPoll <= 0 {
		o.TransitionPoll = DefaultTransitionPoll
	}
	if o.MaxConcurrentReconciles <= 0 {
		o.MaxConcurrentReconciles = DefaultConcurrency
	}
	if o.ConsistencyWindow <= 0 {
		o.ConsistencyWindow = DefaultConsistencyWindow
	}
	if o.KeyRotationOverlap <= 0 {
		o.KeyRotationOverlap = DefaultKeyRotationOverlap
	}
	if o.ActivityNamespace == "" {
		o.ActivityNamespace = activity.DefaultNamespace
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// driftIntervalFor is the object's own drift interval: DriftInterval scaled by a factor in
// [0.9, 1.1) fixed by the object's UID, so a fleet created at once is not read back at once.
func (o Options) driftIntervalFor(uid types.UID) time.Duration {
	h := fnv.New32a()
	_, _ = h.Write([]byte(uid))
	frac := float64(h.Sum32()%1000) / 1000
	return time.Duration(float64(o.DriftInterval) * (0.9 + 0.2*frac))
}

// untilConsistent is how long until a write sent at sent is surely visible in Fly's reads (0 or
// less: now; also when nothing was sent).
func (o Options) untilConsistent(sent *metav1.Time, now time.Time) time.Duration {
	if sent == nil {
		return 0
	}
	return sent.Add(o.ConsistencyWindow).Sub(now)
}

// untilDriftCheck is how long until an object last read from Fly at last is due to be read again
// (0 or less: now). The stored time is cut to whole seconds; counting from the end of that second
// keeps reads at most one per interval.
func (o Options) untilDriftCheck(last *metav1.Time, uid types.UID, now time.Time) time.Duration {
	if last == nil {
		return 0
	}
	return last.Add(time.Second + o.driftIntervalFor(uid)).Sub(now)
}
