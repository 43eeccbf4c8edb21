package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/pkg/replayauth"
)

// ReplayStatus is the status code of a replaying response. Fly's docs show both 307 and 409; the
// Fly Proxy acts on the fly-replay header whatever the code. 409 is what Fly's own client library
// sends, and if a replay ever reached a client directly (a router deployed without the Fly Proxy in
// front) it reads as an error, never as a redirect without a Location or as a cacheable success.
const ReplayStatus = http.StatusConflict

// Replay response headers and media type.
const (
	HeaderReplay         = "Fly-Replay"
	ReplayJSONMediaType  = "application/vnd.fly.replay+json"
	FallbackForceSelf    = "force_self"
	FallbackPreferSelf   = "prefer_self"
	headerAuthorization  = "Authorization"
	maxReplayTimeout     = time.Hour
	minReplayTimeoutUnit = time.Millisecond
)

// Form is how a replay is written: as the fly-replay header or as the JSON body.
type Form int

const (
	// FormHeader writes `fly-replay: app=..;instance=..;state=..` and an empty body.
	FormHeader Form = iota
	// FormJSON writes an application/vnd.fly.replay+json body. The router always uses it when the
	// replay must also transform the request (deleting the coordinator's token).
	FormJSON
)

// ParseForm reads the --replay-form flag value: header or json.
func ParseForm(s string) (Form, error) {
	switch s {
	case "header":
		return FormHeader, nil
	case "json":
		return FormJSON, nil
	}
	return 0, fmt.Errorf("replay form %q: use header or json", s)
}

func (f Form) String() string {
	if f == FormJSON {
		return "json"
	}
	return "header"
}

// ReplayOptions are the installation-wide parts of every replay.
type ReplayOptions struct {
	// Form is the default form; FormJSON is used anyway when a transform is needed.
	Form Form
	// Timeout, when positive, bounds how long the Fly Proxy tries the target before giving up.
	Timeout time.Duration
	// Fallback, when set, is force_self or prefer_self: where the Fly Proxy sends the request when
	// the replay fails.
	Fallback string
}

// ErrReplayOptions means a ReplayOptions field is out of range.
var ErrReplayOptions = errors.New("invalid replay options")

// Validate checks the options.
func (o ReplayOptions) Validate() error {
	if o.Form != FormHeader && o.Form != FormJSON {
		return fmt.Errorf("%w: unknown form %d", ErrReplayOptions, o.Form)
	}
	if o.Timeout < 0 || o.Timeout > maxReplayTimeout || (o.Timeout > 0 && o.Timeout < minReplayTimeoutUnit) {
		return fmt.Errorf("%w: timeout must be between 1ms and 1h (0 leaves it out)", ErrReplayOptions)
	}
	switch o.Fallback {
	case "", FallbackForceSelf, FallbackPreferSelf:
	default:
		return fmt.Errorf("%w: fallback must be force_self or prefer_self (empty leaves it out)", ErrReplayOptions)
	}
	return nil
}

// formatTimeout spells d the way Fly's docs do ("10s", "800ms"): whole seconds in s, anything else
// in ms (rounded up, so a timeout is never shortened).
func formatTimeout(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return strconv.FormatInt(int64(ms), 10) + "ms"
}

// Replay is one fly-replay instruction. Every field comes from the cached UserApp/UserMachine
// status and the router's flags, never from the request.
type Replay struct {
	App      string `json:"app"`
	Instance string `json:"instance,omitempty"`
	State    string `json:"state,omitempty"`
	Timeout  string `json:"timeout,omitempty"`
	Fallback string `json:"fallback,omitempty"`
	// DeleteHeaders are request headers the Fly Proxy removes before the target sees the request
	// (JSON form only).
	DeleteHeaders []string `json:"-"`
}

// replayJSON is the body of the JSON form.
type replayJSON struct {
	Replay
	Transform *replayTransform `json:"transform,omitempty"`
}

type replayTransform struct {
	DeleteHeaders []string `json:"delete_headers,omitempty"`
}

// HeaderValue writes r in the header form: `app=..;instance=..;state=..;timeout=..;fallback=..`,
// leaving out empty fields. The values are Fly names, the replayauth token, a duration and an enum,
// none of which needs quoting. DeleteHeaders cannot be expressed in this form and is ignored.
func (r Replay) HeaderValue() string {
	var b strings.Builder
	b.Grow(len(r.App) + len(r.Instance) + len(r.State) + len(r.Timeout) + len(r.Fallback) + 40)
	field := func(name, value string) {
		if value == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(value)
	}
	field("app", r.App)
	field("instance", r.Instance)
	field("state", r.State)
	field("timeout", r.Timeout)
	field("fallback", r.Fallback)
	return b.String()
}

// JSON writes r in the JSON form, with a transform when DeleteHeaders is set.
func (r Replay) JSON() []byte {
	body := replayJSON{Replay: r}
	if len(r.DeleteHeaders) > 0 {
		body.Transform = &replayTransform{DeleteHeaders: r.DeleteHeaders}
	}
	out, err := json.Marshal(body)
	if err != nil {
		// Marshalling strings and a slice of strings cannot fail.
		panic("router: marshalling a replay: " + err.Error())
	}
	return out
}

// replayFor builds the replay of one target for one state token.
func replayFor(app, machine, state string, opts ReplayOptions) Replay {
	return Replay{
		App:      app,
		Instance: machine,
		State:    state,
		Timeout:  formatTimeout(opts.Timeout),
		Fallback: opts.Fallback,
	}
}

// validReplayName reports whether a Fly app name or machine ID from a CR status can go into a
// replay: the same alphabet replayauth signs (lower-case letters, digits, dashes; ≤ 63).
func validReplayName(s string) bool { return replayauth.ValidName(s) }
