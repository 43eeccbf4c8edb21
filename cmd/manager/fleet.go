package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/leaderelection"
)

// Leader election defaults: controller-runtime's own, kept explicit so the flags show them.
const (
	defaultElectionID    = "manager.hangar.dev"
	defaultLeaseDuration = 15 * time.Second
	defaultRenewDeadline = 10 * time.Second
	defaultRetryPeriod   = 2 * time.Second
)

// fleetOptions are the settings of running more than one manager: the replicas of a shard elect a
// leader on the shard's lease, and shards split the fleet by label selector.
type fleetOptions struct {
	electionID    string
	leaseDuration time.Duration
	renewDeadline time.Duration
	retryPeriod   time.Duration
	selector      string
}

func (o *fleetOptions) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.electionID, "leader-election-id", defaultElectionID, "Name of the leader election Lease; each shard (--selector) needs its own")
	fs.DurationVar(&o.leaseDuration, "leader-election-lease-duration", defaultLeaseDuration, "How long a standby waits after the leader's last renewal before taking over (whole seconds)")
	fs.DurationVar(&o.renewDeadline, "leader-election-renew-deadline", defaultRenewDeadline, "How long the leader keeps trying to renew before it stops (the process exits); below the lease duration, so it stops before a standby can take over")
	fs.DurationVar(&o.retryPeriod, "leader-election-retry-period", defaultRetryPeriod, "How often the leader renews and a standby tries to take over")
	fs.StringVar(&o.selector, "selector", "", "Reconcile only the UserApps and UserMachines this label selector matches (e.g. shard=a); a user's UserApp and UserMachines must match alike; empty reconciles all")
}

// validate checks the flags and returns the parsed shard selector (nil: no selector).
func (o *fleetOptions) validate(leaderElect bool) (labels.Selector, error) {
	if errs := validation.IsDNS1123Subdomain(o.electionID); len(errs) > 0 {
		return nil, fmt.Errorf("--leader-election-id %q: not a Lease name: %s", o.electionID, strings.Join(errs, "; "))
	}
	switch {
	case o.leaseDuration < time.Second || o.leaseDuration%time.Second != 0:
		// The Lease records its duration in whole seconds: a standby would wait for the truncated one.
		return nil, fmt.Errorf("--leader-election-lease-duration %s: use whole seconds, at least 1s", o.leaseDuration)
	case o.renewDeadline <= 0 || o.renewDeadline >= o.leaseDuration:
		// The leader must give up before a standby may take over, or both would act for a while.
		return nil, fmt.Errorf("--leader-election-renew-deadline %s: use more than 0 and less than --leader-election-lease-duration (%s)",
			o.renewDeadline, o.leaseDuration)
	case o.retryPeriod <= 0 || time.Duration(leaderelection.JitterFactor*float64(o.retryPeriod)) >= o.renewDeadline:
		// client-go's own rule: a renewal is retried, with jitter, before the deadline.
		return nil, fmt.Errorf("--leader-election-retry-period %s: use more than 0 and less than --leader-election-renew-deadline / %.1f (%s)",
			o.retryPeriod, leaderelection.JitterFactor, time.Duration(float64(o.renewDeadline)/leaderelection.JitterFactor))
	}
	if o.selector == "" {
		return nil, nil
	}
	shard, err := labels.Parse(o.selector)
	if err != nil {
		return nil, fmt.Errorf("--selector %q: %w", o.selector, err)
	}
	if leaderElect && o.electionID == defaultElectionID {
		return nil, errors.New("--selector with --leader-elect: set --leader-election-id to a Lease name of this shard's own (shards sharing a lease would run one at a time)")
	}
	return shard, nil
}
