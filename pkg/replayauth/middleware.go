package replayauth

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"
)

// HeaderSource is the request header in which the Fly Proxy passes the replay state to the target.
const HeaderSource = "Fly-Replay-Src"

// Config is what a user machine needs to verify replays: its app's replay key, its app name and its
// own machine ID.
type Config struct {
	// Key is the app's replay key (KeySize bytes).
	Key []byte
	// PreviousKey, when set, is the app's previous replay key: during a key rotation states signed
	// with it are accepted too.
	PreviousKey []byte
	// App is the Fly app name of this machine.
	App string
	// MachineID is the Fly machine ID of this machine.
	MachineID string
	// MaxLifetime is the longest lifetime of a state the router signs: a state expiring more than
	// MaxLifetime + Skew after now is refused (ErrFutureExpiry). Zero means DefaultMaxLifetime,
	// which covers every --state-ttl hangar's router accepts.
	MaxLifetime time.Duration
	// Skew is how far the router's clock may be ahead of this machine's (DefaultSkew when zero).
	Skew time.Duration
	// Now tells the time; nil means time.Now.
	Now func() time.Time
	// OnReject, when set, is told why Middleware refused a request (for a log line or a metric).
	// The error never holds the key.
	OnReject func(r *http.Request, err error)
}

// ErrConfig means Config lacks something; the message names which environment variable or field.
var ErrConfig = errors.New("replayauth: incomplete configuration")

// FromEnv builds a Config from the environment Fly and hangar give a user machine:
// HANGAR_REPLAY_KEY (hex), HANGAR_REPLAY_KEY_PREVIOUS (hex, only while a rotation overlaps),
// FLY_APP_NAME and FLY_MACHINE_ID.
func FromEnv() (Config, error) {
	var cfg Config
	raw, ok := os.LookupEnv(EnvKey)
	if !ok || raw == "" {
		return Config{}, fmt.Errorf("%w: %s is not set", ErrConfig, EnvKey)
	}
	key, err := DecodeKey(raw)
	if err != nil {
		return Config{}, fmt.Errorf("reading %s: %w", EnvKey, err)
	}
	cfg.Key = key
	if raw := os.Getenv(EnvPreviousKey); raw != "" {
		if cfg.PreviousKey, err = DecodeKey(raw); err != nil {
			return Config{}, fmt.Errorf("reading %s: %w", EnvPreviousKey, err)
		}
	}
	cfg.App = os.Getenv(EnvApp)
	cfg.MachineID = os.Getenv(EnvMachineID)
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func (c Config) validate() error {
	switch {
	case len(c.Key) < MinKeySize:
		return fmt.Errorf("%w: %w", ErrConfig, ErrKey)
	case c.App == "":
		return fmt.Errorf("%w: the app name (%s) is empty", ErrConfig, EnvApp)
	case c.MachineID == "":
		return fmt.Errorf("%w: the machine ID (%s) is empty", ErrConfig, EnvMachineID)
	case c.MaxLifetime < 0 || c.Skew < 0:
		return fmt.Errorf("%w: MaxLifetime and Skew cannot be negative", ErrConfig)
	}
	return nil
}

// maxAhead is how far after now an accepted state may expire.
func (c Config) maxAhead() time.Duration {
	lifetime, skew := c.MaxLifetime, c.Skew
	if lifetime == 0 {
		lifetime = DefaultMaxLifetime
	}
	if skew == 0 {
		skew = DefaultSkew
	}
	return lifetime + skew
}

// Verify checks the replay state of r: r must carry exactly one fly-replay-src header
// (ErrMultipleSources otherwise), holding a state Verify accepts, within c's MaxLifetime and Skew.
func (c Config) Verify(r *http.Request) error {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	if len(c.Key) < MinKeySize {
		return ErrKey
	}
	state, err := StateFromHeaders(r.Header.Values(HeaderSource))
	if err != nil {
		return err
	}
	err = verifyState(c.Key, state, c.App, c.MachineID, now(), c.maxAhead())
	if errors.Is(err, ErrBadMAC) && len(c.PreviousKey) >= MinKeySize {
		// A rotation is under way: the router may still sign with the previous key.
		return verifyState(c.PreviousKey, state, c.App, c.MachineID, now(), c.maxAhead())
	}
	return err
}

// Middleware lets a request through to next only when it carries exactly one fly-replay-src with a
// valid state for this machine; every other request (no header, several headers, a malformed,
// forged, expired, too far future or other machine's state) gets the same 401 with a fixed body
// that says nothing about why. OnReject is told the reason.
//
// It panics when cfg is incomplete, so a machine started without its key fails at once instead of
// refusing every request.
func Middleware(cfg Config, next http.Handler) http.Handler {
	if err := cfg.validate(); err != nil {
		panic(err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := cfg.Verify(r); err != nil {
			if cfg.OnReject != nil {
				cfg.OnReject(r, err)
			}
			h := w.Header()
			h.Set("Content-Type", "text/plain; charset=utf-8")
			h.Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte("unauthorized\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
