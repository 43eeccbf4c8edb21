package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"strings"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// Fly machine metadata hangar writes. They let a lost create be found again (uid), tell people on
// the Fly side which object owns a machine (namespace, name), and record what config was applied.
const (
	MetadataUID        = "hangar.dev/uid"
	MetadataNamespace  = "hangar.dev/namespace"
	MetadataName       = "hangar.dev/name"
	MetadataConfigHash = "hangar.dev/config-hash"
)

// maxMachineNameLength keeps machine names short enough for Fly and for people.
const maxMachineNameLength = 63

// desiredMachineFor builds the machine a UserMachine asks for, in app (whose secrets version the
// machine must see), defaulting the region to defaultRegion.
func desiredMachineFor(um *flyv1alpha1.UserMachine, app *flyv1alpha1.UserApp, defaultRegion string) DesiredMachine {
	region := um.Spec.Region
	if region == "" {
		region = defaultRegion
	}
	metadata := maps.Clone(um.Spec.Metadata)
	if metadata == nil {
		metadata = map[string]string{}
	}
	metadata[MetadataUID] = string(um.UID)
	metadata[MetadataNamespace] = um.Namespace
	metadata[MetadataName] = um.Name

	d := DesiredMachine{
		Name:              machineName(um.Name),
		Region:            region,
		Image:             um.Spec.Image,
		Env:               um.Spec.Env,
		Guest:             um.Spec.EffectiveGuest(),
		Services:          um.Spec.EffectiveServices(),
		Checks:            um.Spec.Checks,
		Restart:           um.Spec.Restart,
		StopConfig:        um.Spec.StopConfig,
		Metadata:          metadata,
		MinSecretsVersion: app.Status.SecretsVersion,
	}
	d.Metadata[MetadataConfigHash] = configHash(d)
	return d
}

// configHash is a short digest of everything hangar sets on a machine, except the hash itself:
// when it differs from the one recorded, the machine needs an update. It covers the app's secrets
// version, so new secrets roll out to the machines.
func configHash(d DesiredMachine) string {
	withoutHash := d
	withoutHash.Metadata = maps.Clone(d.Metadata)
	delete(withoutHash.Metadata, MetadataConfigHash)
	// json.Marshal sorts map keys, so equal configs always encode alike.
	raw, err := json.Marshal(withoutHash)
	if err != nil {
		// Every field is a plain value; failing here is a programming error.
		panic("controllers: encoding the desired machine: " + err.Error())
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

// machineName is the Fly machine name of a UserMachine: its own name, which is unique among the
// UserMachines of one app (they share a namespace), cut to fit with a hash keeping cut names apart.
// Being deterministic, it makes a repeated create fail with "name taken" instead of duplicating.
func machineName(name string) string {
	if len(name) <= maxMachineNameLength {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "-" + hex.EncodeToString(sum[:4])
	return strings.TrimRight(name[:maxMachineNameLength-len(suffix)], "-.") + suffix
}
