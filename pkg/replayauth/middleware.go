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
	// App is the Fly app name of this machine.
	App string
	// MachineID is the Fly machine ID of this machine.
	MachineID string
	// Now tells the time; nil means time.Now.
	Now func() time.Time
	// OnReject, when set, is told why Middleware refused a request (for a log line or a metric).
	// The error never holds the key.
	OnReject func(r *http.Request, err error)
}

// ErrConfig means Config lacks something; the message names which environment variable or field.
var ErrConfig = errors.New("replayauth: incomplete configuration")

// FromEnv builds a Config from the environment Fly and hangar give a user machine:
// HANGAR_REPLAY_KEY (hex), FLY_APP_NAME and FLY_MACHINE_ID.
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
	}
	return nil
}

// Verify checks the replay state of r.
func (c Config) Verify(r *http.Request) error {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	return Verify(c.Key, r.Header.Get(HeaderSource), c.App, c.MachineID, now())
}

// Middleware lets a request through to next only when its fly-replay-src carries a valid state for
// this machine; every other request gets 401 with a fixed body that says nothing about why.
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
