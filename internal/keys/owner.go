package keys

import (
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
