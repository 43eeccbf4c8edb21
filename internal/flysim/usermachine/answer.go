package usermachine

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/pkg/replayauth"
)

// Answer is the JSON body every simulated user machine answers with, whatever the method and path:
// who answered, what it received, and what it made of the request's credentials.
type Answer struct {
	App     string        `json:"app"`
	Machine string        `json:"machine"`
	Region  string        `json:"region"`
	Version string        `json:"version"` // the machine version serving
	Service ServiceAnswer `json:"service"`
	Method  string        `json:"method"`
	Path    string        `json:"path"`
	Query   string        `json:"query,omitempty"`
	Host    string        `json:"host"`
	// Headers are the request headers as received; the Authorization value is replaced by "[redacted]".
	Headers   map[string][]string `json:"headers"`
	BodyBytes int64               `json:"body_bytes"`
	// ReplayStateVerified reports whether fly-replay-src carried a state that pkg/replayauth verified
	// with the app's HANGAR_REPLAY_KEY (as of the machine's boot secrets), for this app and machine.
	ReplayStateVerified bool `json:"replay_state_verified"`
	// ReplayStateError says why not (a replayauth error, or that the machine has no usable replay key).
	ReplayStateError string `json:"replay_state_error,omitempty"`
	// ManagementTokenMatched reports whether the request carried
	// `Authorization: Bearer <HANGAR_MANAGEMENT_TOKEN>` for the machine's boot secrets.
	ManagementTokenMatched bool `json:"management_token_matched"`
	// SecretsVersion is the app secrets version the machine booted with.
	SecretsVersion uint64 `json:"secrets_version"`
	// Secrets are the names (never the values) of the secrets the machine sees, sorted.
	Secrets []string `json:"secrets"`
}

// ServiceAnswer names the service a request reached: its internal port and, when the config gives
// one, its name (the blueprint's "management" on 9090 and "public" on 8080).
type ServiceAnswer struct {
	InternalPort int    `json:"internal_port"`
	Name         string `json:"name,omitempty"`
}

// redactedValue replaces the Authorization header in answers.
const redactedValue = "[redacted]"

// machineHandler answers for one listener of one machine version. Everything it needs is fixed at
// boot, as a process reads its environment once.
type machineHandler struct {
	base Answer // identity fields, filled once
	// replay verifies replay state as a user machine would (pkg/replayauth), with the replay key
	// and, while a key rotation overlaps, the previous one; Key is nil when the secret is missing
	// or malformed.
	replay   replayauth.Config
	keyError string
	// mgmtTokens are the management token and, while a rotation overlaps, the previous one.
	mgmtTokens []string
}

func newMachineHandler(boot flysim.MachineBoot, svc flysim.Service, now func() time.Time) *machineHandler {
	h := &machineHandler{
		base: Answer{
			App: boot.App, Machine: boot.ID, Region: boot.Region, Version: boot.Version,
			Service:        ServiceAnswer{InternalPort: svc.InternalPort, Name: svc.Name},
			SecretsVersion: boot.SecretsVersion,
			Secrets:        make([]string, 0, len(boot.Secrets)),
		},
		replay: replayauth.Config{App: boot.App, MachineID: boot.ID, Now: now},
	}
	for _, name := range []string{keys.ManagementTokenSecret, keys.PreviousManagementTokenSecret} {
		if token := boot.Secrets[name]; token != "" {
			h.mgmtTokens = append(h.mgmtTokens, token)
		}
	}
	for name := range boot.Secrets {
		h.base.Secrets = append(h.base.Secrets, name)
	}
	slices.Sort(h.base.Secrets)
	switch raw, ok := boot.Secrets[keys.ReplayKeySecret]; {
	case !ok:
		h.keyError = "the machine has no " + keys.ReplayKeySecret + " secret"
	default:
		key, err := keys.DecodeReplayKey(raw)
		if err != nil {
			h.keyError = err.Error() // DecodeReplayKey never quotes the key
		}
		h.replay.Key = key
	}
	if raw := boot.Secrets[keys.PreviousReplayKeySecret]; raw != "" {
		h.replay.PreviousKey, _ = keys.DecodeReplayKey(raw) // a malformed previous key is ignored
	}
	return h
}

func (h *machineHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	a := h.base
	a.Secrets = slices.Clone(h.base.Secrets)
	a.Method, a.Path, a.Query, a.Host, a.BodyBytes = r.Method, r.URL.Path, r.URL.RawQuery, r.Host, n
	a.Headers = make(map[string][]string, len(r.Header))
	for name, values := range r.Header {
		if name == "Authorization" {
			values = []string{redactedValue}
		}
		a.Headers[name] = slices.Clone(values)
	}
	if h.replay.Key == nil {
		a.ReplayStateError = h.keyError
	} else if err := h.replay.Verify(r); err != nil {
		a.ReplayStateError = err.Error()
	} else {
		a.ReplayStateVerified = true
	}
	a.ManagementTokenMatched = h.tokenMatches(r.Header.Get("Authorization"))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a)
}

// tokenMatches compares a bearer token with the management tokens in constant time.
func (h *machineHandler) tokenMatches(authorization string) bool {
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	matched := false
	for _, want := range h.mgmtTokens {
		matched = subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(want)) == 1 || matched
	}
	return matched
}
