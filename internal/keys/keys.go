// Package keys derives per-app secrets from the installation's root key with HKDF (crypto/hkdf):
// the replay key a user machine verifies replay state with and the management token its management
// service accepts. It deliberately stores nothing and talks to nothing: callers read the root key
// (a mounted Secret) and set the results where they belong (Fly app secrets, connection Secrets).
//
// Every output is a pure function of the root key, the purpose and the app's identity (App: the Fly
// app name, the UID of the UserApp that owns it and its key generation), so the manager and every
// router replica derive the same values without sharing anything but the root key, while a
// UserApp created again, or another tenant reusing a Fly app name, gets keys of its own, and one
// app's keys rotate by raising its generation. Nothing in this package formats a key into an error
// or a log value.
package keys

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/hangar-dev/hangar/pkg/replayauth"
)

// RootKeySize is the size of the root key in bytes.
const RootKeySize = 32

// RootKeySecretKey is the data key of the root key Secret; its value is the 32 raw bytes.
const RootKeySecretKey = "root.key"

// Names of the Fly app secrets hangar sets on every app; the user machine sees them as environment
// variables.
const (
	// ReplayKeySecret holds the app's replay key in the text form of EncodeReplayKey.
	ReplayKeySecret = replayauth.EnvKey
	// ManagementTokenSecret holds the app's management token.
	ManagementTokenSecret = "HANGAR_MANAGEMENT_TOKEN"
	// PreviousReplayKeySecret holds the previous generation's replay key while a rotation overlaps.
	PreviousReplayKeySecret = replayauth.EnvPreviousKey
	// PreviousManagementTokenSecret holds the previous generation's management token while a
	// rotation overlaps.
	PreviousManagementTokenSecret = "HANGAR_MANAGEMENT_TOKEN_PREVIOUS"
)

// ReplayKeySize is the size of a derived replay key in bytes.
const ReplayKeySize = replayauth.KeySize

// managementTokenBytes is the entropy of a management token (256 bits).
const managementTokenBytes = 32

// HKDF parameters. The salt separates hangar's derivations from any other use of the same bytes;
// the info labels separate the purposes from each other. Neither a Fly app name nor a UID holds a
// space, so "<label> <app> <owner> <generation>" cannot be read two ways.
const (
	hkdfSalt             = "hangar.dev/keys/v1"
	replayKeyInfo        = "hangar.dev/v2 replay-key "
	managementTokenInfo  = "hangar.dev/v2 management-token "
	redacted             = "keys.Root(redacted)"
	rootKeyGenerateHint  = "write 32 random bytes, e.g. `head -c 32 /dev/urandom > root.key`"
	rootKeyErrorTemplate = "%w: got %d bytes; " + rootKeyGenerateHint
)

// ErrRootKeySize means the root key material is not exactly RootKeySize raw bytes.
var ErrRootKeySize = errors.New("keys: the root key must be exactly 32 raw bytes")

// Root is the installation's root key, ready to derive from. Its String, GoString and MarshalLog
// methods print a placeholder, so a Root passed to a logger by mistake reveals nothing.
type Root struct {
	// prk is the HKDF pseudorandom key extracted from the root key once, so each derivation is a
	// single Expand.
	prk []byte
}

// ParseRoot takes the raw root key bytes (exactly RootKeySize of them). The bytes are copied.
func ParseRoot(b []byte) (Root, error) {
	if len(b) != RootKeySize {
		return Root{}, fmt.Errorf(rootKeyErrorTemplate, ErrRootKeySize, len(b))
	}
	prk, err := hkdf.Extract(sha256.New, b, []byte(hkdfSalt))
	if err != nil {
		return Root{}, fmt.Errorf("keys: extracting the root key: %w", err)
	}
	return Root{prk: prk}, nil
}

// ReadRootFile reads the root key from a file holding its raw bytes, such as the root key Secret
// mounted at <dir>/root.key.
func ReadRootFile(path string) (Root, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Root{}, fmt.Errorf("keys: reading the root key: %w", err)
	}
	r, err := ParseRoot(b)
	clear(b)
	if err != nil {
		return Root{}, fmt.Errorf("keys: root key file %s: %w", path, err)
	}
	return r, nil
}

// GenerateRootKey returns RootKeySize fresh random bytes, for tools that create the root key Secret.
func GenerateRootKey() []byte {
	b := make([]byte, RootKeySize)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
	return b
}

// IsZero reports whether r was not made by ParseRoot.
func (r Root) IsZero() bool { return r.prk == nil }

// App names one generation of one app's keys.
type App struct {
	// FlyApp is the Fly app name.
	FlyApp string
	// Owner is the UID of the UserApp that owns the Fly app: a UserApp created again under the same
	// name, or another tenant taking a released Fly app name, gets other keys.
	Owner string
	// Generation is the app's key generation (UserApp status.keyGeneration): raising it rotates
	// this app's keys alone.
	Generation int64
}

func (a App) info(label string) string {
	return label + a.FlyApp + " " + a.Owner + " " + strconv.FormatInt(a.Generation, 10)
}

// ReplayKey derives the replay key (ReplayKeySize bytes) of app: the router signs replay state with
// it and the app's machines verify it (pkg/replayauth).
func (r Root) ReplayKey(app App) []byte {
	return r.expand(app.info(replayKeyInfo), ReplayKeySize)
}

// ManagementToken derives the management token of app: 256 bits in unpadded base64url, sent as
// `Authorization: Bearer <token>` to the app's management service.
func (r Root) ManagementToken(app App) string {
	return base64.RawURLEncoding.EncodeToString(r.expand(app.info(managementTokenInfo), managementTokenBytes))
}

func (r Root) expand(info string, n int) []byte {
	if r.prk == nil {
		panic("keys: derive from a zero Root; build it with ParseRoot or ReadRootFile")
	}
	out, err := hkdf.Expand(sha256.New, r.prk, info, n)
	if err != nil {
		// Only a length above 255*32 bytes fails, and every length here is a constant far below.
		panic("keys: HKDF expand: " + err.Error())
	}
	return out
}

// String hides the key.
func (r Root) String() string { return redacted }

// GoString hides the key from %#v.
func (r Root) GoString() string { return redacted }

// MarshalLog hides the key from logr-based loggers.
func (r Root) MarshalLog() any { return redacted }

// EncodeReplayKey is the text form of a replay key held in the Fly secret HANGAR_REPLAY_KEY
// (lower-case hex; see pkg/replayauth).
func EncodeReplayKey(key []byte) string { return replayauth.EncodeKey(key) }

// DecodeReplayKey reads the text form of EncodeReplayKey. Its errors never quote the input.
func DecodeReplayKey(s string) ([]byte, error) { return replayauth.DecodeKey(s) }
