package controllers

import (
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// Sharding a fleet over several managers: each manager reconciles the UserApps and UserMachines of
// its namespace (--namespace) and those its label selector matches (Options.Shard), each shard with
// its own leader election lease. Its informers hold its shard alone, so a manager's memory and
// start-up list follow its shard, not the fleet.

// ShardCacheOptions are CacheOptions(namespace) restricted to the UserApps and UserMachines shard
// matches (nil or empty: all of them). The watches of both kinds go through these informers, so
// objects outside the shard are neither cached nor reconciled.
func ShardCacheOptions(namespace string, shard labels.Selector) cache.Options {
	opts := CacheOptions(namespace)
	if shard == nil || shard.Empty() {
		return opts
	}
	opts.ByObject[&flyv1alpha1.UserApp{}] = cache.ByObject{Label: shard}
	opts.ByObject[&flyv1alpha1.UserMachine{}] = cache.ByObject{Label: shard}
	return opts
}

// inShard reports whether obj is one of this manager's objects. A UserMachine is read from its
// own shard's cache, but its UserApp is read from the apiserver (see base.reader), so a machine
// whose app another shard owns must be told apart there.
func (o Options) inShard(obj client.Object) bool {
	return o.Shard == nil || o.Shard.Matches(labels.Set(obj.GetLabels()))
}
