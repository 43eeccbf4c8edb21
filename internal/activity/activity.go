// Package activity is the format of the activity Leases, which the router replicas write and the
// manager reads for idle timeouts: when the router last sent each user machine a request.
package activity

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

// One Lease per UserApp, in the namespace the router and the manager share (hangar-system by
// default). It is named after the UserApp's UID, so a UserApp deleted and created again under the
// same name starts afresh, and labelled with the UserApp's namespace and name for people
// (kubectl get leases -l fly.hangar.dev/activity).
const (
	// Label marks activity Leases; the router's and the manager's informers select on it.
	Label = "fly.hangar.dev/activity"
	// LabelAppNamespace and LabelAppName say whose activity a Lease holds.
	LabelAppNamespace = "fly.hangar.dev/userapp-namespace"
	LabelAppName      = "fly.hangar.dev/userapp-name"
	// Annotation holds the times as a JSON object: machine ID (or AppWide) → RFC 3339 time.
	Annotation = "fly.hangar.dev/last-request"
	// AppWide is the key of requests replayed to the app with no fixed machine (an app with several
	// routable machines, balanced by the Fly Proxy): they count for every machine of the app.
	AppWide = "*"

	namePrefix = "activity-"
)

// DefaultNamespace is where the activity Leases live unless the router and the manager are told
// otherwise: the namespace config/default installs hangar in.
const DefaultNamespace = "hangar-system"

// LeaseName is the name of the activity Lease of the UserApp with uid.
func LeaseName(uid types.UID) string { return namePrefix + string(uid) }

// Selector selects the activity Leases.
func Selector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{Label: "true"})
}

// Labels are an activity Lease's labels for the UserApp namespace/name. A name too long for a label
// value is left out (the Lease's name still ties it to the UserApp's UID).
func Labels(namespace, name string) map[string]string {
	l := map[string]string{Label: "true", LabelAppNamespace: namespace}
	if len(validation.IsValidLabelValue(name)) == 0 {
		l[LabelAppName] = name
	}
	return l
}

// Times are the last request times of a UserApp's machines, by machine ID (and AppWide), in whole
// seconds.
type Times map[string]time.Time

// Decode reads an Annotation value; an empty value is no activity.
func Decode(value string) (Times, error) {
	if value == "" {
		return Times{}, nil
	}
	var raw map[string]string
	if err := json.Unmarshal([]byte(value), &raw); err != nil {
		return nil, fmt.Errorf("annotation %s: %w", Annotation, err)
	}
	t := make(Times, len(raw))
	for k, v := range raw {
		at, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, fmt.Errorf("annotation %s, key %q: %w", Annotation, k, err)
		}
		t[k] = at
	}
	return t, nil
}

// Encode writes t as an Annotation value: compact JSON, keys sorted, times in UTC to the second.
func (t Times) Encode() string {
	raw := make(map[string]string, len(t))
	for _, k := range slices.Sorted(maps.Keys(t)) {
		raw[k] = t[k].UTC().Truncate(time.Second).Format(time.RFC3339)
	}
	b, err := json.Marshal(raw) // encoding/json sorts map keys
	if err != nil {
		panic("activity: encoding times: " + err.Error()) // strings only: cannot fail
	}
	return string(b)
}

// Of reads the times of a Lease (none for a nil Lease).
func Of(lease *coordinationv1.Lease) (Times, error) {
	if lease == nil {
		return Times{}, nil
	}
	return Decode(lease.Annotations[Annotation])
}

// LastFor is the last request that reached machineID: sent to it, or to its app with no fixed
// machine. Zero when there was none.
func (t Times) LastFor(machineID string) time.Time {
	last := t[AppWide]
	if m := t[machineID]; m.After(last) {
		last = m
	}
	return last
}
