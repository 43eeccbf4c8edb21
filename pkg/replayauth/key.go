package replayauth

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of the replay keys hangar gives its apps.
const KeySize = 32

// Environment variables a user machine reads: hangar sets the replay key as a Fly app secret, and
// Fly sets the app name and machine ID on every machine.
const (
	EnvKey = "HANGAR_REPLAY_KEY"
	// EnvPreviousKey holds the previous replay key while hangar rotates the app's keys: states
	// signed with either are accepted until it is unset.
	EnvPreviousKey = "HANGAR_REPLAY_KEY_PREVIOUS"
	EnvApp         = "FLY_APP_NAME"
	EnvMachineID   = "FLY_MACHINE_ID"
)

// ErrKeyFormat means a replay key's text form is not 64 hex digits. The message never quotes it.
var ErrKeyFormat = errors.New("replayauth: replay key must be 64 hex digits (32 bytes)")

// EncodeKey is the text form of a replay key held in the Fly secret HANGAR_REPLAY_KEY: lower-case
// hex, which every language decodes without a library.
func EncodeKey(key []byte) string { return hex.EncodeToString(key) }

// DecodeKey reads the text form written by EncodeKey (surrounding white space is ignored, either
// letter case is accepted). It accepts only KeySize bytes.
func DecodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) != hex.EncodedLen(KeySize) {
		return nil, fmt.Errorf("%w: got %d characters", ErrKeyFormat, len(s))
	}
	key, err := hex.DecodeString(s)
	if err != nil {
		// hex's own error quotes the offending character, which is part of a secret: drop it.
		return nil, ErrKeyFormat
	}
	return key, nil
}
