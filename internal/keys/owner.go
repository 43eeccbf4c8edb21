package keys

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// OwnerMarkerPrefix starts the name of the Fly app secret that marks which hangar object owns a
// Fly app (see OwnerMarker).
const OwnerMarkerPrefix = "HANGAR_OWNER_"

// ownerMarkerInfo is the HKDF info prefix of owner markers.
const ownerMarkerInfo = "hangar owner marker v1 "

// OwnerMarker is the name of the Fly app secret that marks flyApp as owned by the hangar object
// whose UID is owner, in the installation of this root key. Fly apps carry no metadata, but
// hangar alone sets their secrets, and secret names are listed to anyone who may read the app:
// the name is keyed with the root key, so another object or another installation cannot make one
// that reads as ours, and ours is told apart from theirs by name alone, without reading values.
func (r Root) OwnerMarker(flyApp, owner string) string {
	return OwnerMarkerPrefix + strings.ToUpper(hex.EncodeToString(r.expand(ownerMarkerInfo+flyApp+"|"+owner, 16)))
}

// IsOwnerMarker reports whether a Fly secret name is an owner marker (anyone's).
func IsOwnerMarker(secretName string) bool { return strings.HasPrefix(secretName, OwnerMarkerPrefix) }

// ReleaseMarkerPrefix starts the name of the Fly app secret with which whoever holds the Fly token
// releases an app hangar does not manage to one UserApp (see ReleaseMarker).
const ReleaseMarkerPrefix = "HANGAR_RELEASE_"

// ReleaseMarker is the name of the Fly app secret that releases an existing Fly app to the UserApp
// namespace/name, so that UserApp may adopt it (with the adopt annotation). Setting a Fly secret
// takes the Fly token, which tenants do not hold, so the annotation alone, which any author of a
// UserApp can write, never hands over an app. The name is the first 16 bytes of
// SHA-256("<namespace>/<name>") in upper-case hex, so an operator can compute it:
//
//	printf '%s' 'team-a/alice' | sha256sum | cut -c1-32 | tr a-f A-F
func ReleaseMarker(namespace, name string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	return ReleaseMarkerPrefix + strings.ToUpper(hex.EncodeToString(sum[:16]))
}
