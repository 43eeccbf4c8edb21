package router

import (
	"fmt"
	"io"
	"strconv"
)

// The router's values that hold key material or bearer credentials (replay keys, management tokens,
// signed replay states, the root key, the public token key) format as redacted under every fmt
// verb: fmt.Formatter wins over String and GoString, and covers %d or %x too, which would print a
// byte slice's bytes. fmt never calls the methods of a value held in an unexported field, so a
// struct holding one by value (Builder holds the root key) needs its own. Pointers held in fields
// print as addresses and need nothing.

const redactedValue = "[redacted]"

// writeRedacted writes s whatever the verb and flags asked for.
func writeRedacted(f fmt.State, s string) { _, _ = io.WriteString(f, s) }

// String names the secrets without showing them.
func (s appSecrets) String() string {
	return "router.appSecrets{replayKey:" + redactedValue + " managementToken:" + redactedValue + "}"
}

// Format prints String for every verb.
func (s appSecrets) Format(f fmt.State, _ rune) { writeRedacted(f, s.String()) }

// String shows which pair the source signs for, not its key.
func (s *replaySource) String() string {
	return "router.replaySource{app:" + s.app + " machine:" + s.machine +
		" deleteAuth:" + strconv.FormatBool(s.deleteAuth) + " key:" + redactedValue + "}"
}

// Format prints String for every verb.
func (s *replaySource) Format(f fmt.State, _ rune) { writeRedacted(f, s.String()) }

// String hides the signed states (each is a credential until it expires).
func (v replayValues) String() string {
	return "router.replayValues{bucket:" + strconv.FormatInt(v.bucket, 10) + " replay:" + redactedValue + "}"
}

// Format prints String for every verb.
func (v replayValues) Format(f fmt.State, _ rune) { writeRedacted(f, v.String()) }

// String shows where the target came from and where it replays to, not its management token.
func (t target) String() string {
	return "router.target{" + t.ownerName() + " flyApp:" + t.flyApp + " machine:" + t.machine +
		" ready:" + strconv.FormatBool(t.ready) + " managementToken:" + redactedValue + "}"
}

// Format prints String for every verb.
func (t target) Format(f fmt.State, _ rune) { writeRedacted(f, t.String()) }

// String hides the root key and the derived secrets the Builder holds.
func (b *Builder) String() string {
	return "router.Builder{baseDomain:" + b.baseDomain + " root:" + redactedValue + "}"
}

// Format prints String for every verb.
func (b *Builder) Format(f fmt.State, _ rune) { writeRedacted(f, b.String()) }

// String hides the coordinator's HS256 key.
func (v TokenVerifier) String() string {
	return "router.TokenVerifier{key:" + redactedValue + " maxTTL:" + v.maxTTL.String() + " leeway:" + v.leeway.String() + "}"
}

// Format prints String for every verb.
func (v TokenVerifier) Format(f fmt.State, _ rune) { writeRedacted(f, v.String()) }

// MarshalLog keeps the key out of logr-based logs.
func (v TokenVerifier) MarshalLog() any { return v.String() }
