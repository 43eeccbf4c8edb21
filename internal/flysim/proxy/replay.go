package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Replay instructions (§9): what an app answers to have the Fly Proxy replay a request elsewhere,
// either as the `fly-replay` response header or as an application/vnd.fly.replay+json body.

// Replay header, media type and fallback modes.
const (
	HeaderReplay       = "Fly-Replay"
	ReplayJSONType     = "application/vnd.fly.replay+json"
	FallbackForceSelf  = "force_self"
	FallbackPreferSelf = "prefer_self"
)

// ErrReplayMalformed means a replay instruction could not be read. Messages name the field at fault
// but never quote values: `state` usually carries a signed token.
var ErrReplayMalformed = errors.New("flysim: malformed fly-replay")

// Replay is one parsed replay instruction.
type Replay struct {
	// Regions in preference order (region codes, or "any"). Open in the sheet: the simulator matches
	// codes exactly and knows no other alias (us, eu, …): such an entry matches no machine.
	Regions        []string
	Instance       string
	PreferInstance string
	App            string
	// State is opaque; the proxy hands it to the target in fly-replay-src.
	State     string
	Elsewhere bool
	// Timeout bounds how long the proxy tries to reach the target (0: the proxy's default).
	Timeout  time.Duration
	Fallback string // "", FallbackForceSelf or FallbackPreferSelf
	// Transform is only expressible in the JSON form.
	Transform *ReplayTransform
}

// ReplayTransform changes the request before the target sees it (JSON form only).
type ReplayTransform struct {
	// Path replaces the request target: path and query ("/new?x=y"). Open in the sheet: whether a path
	// without `?` keeps the query; here it clears it.
	Path          string
	DeleteHeaders []string
	SetHeaders    []ReplayHeader
}

// ReplayHeader is one header of a transform's set_headers.
type ReplayHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

var (
	// replayNameRE accepts Fly app names and machine IDs (lower-case letters, digits, dashes).
	replayNameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	replayRegionRE = regexp.MustCompile(`^[a-z]{2,4}$`)
)

// maxReplayFieldLength bounds any one value; real instructions are far shorter.
const maxReplayFieldLength = 4096

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrReplayMalformed, fmt.Sprintf(format, args...))
}

// ParseReplayHeader reads the header form: `key=value` fields separated by `;`, values optionally in
// double quotes (needed for a region list: `region="sjc,any"`). Keys are case-insensitive. Following
// the sheet's lenient reading, a `,` outside quotes also separates fields when the text after
// it holds a `=` (`app=a,state=s`); otherwise it belongs to the value (`region=sjc,any`) (Open in the
// sheet: whether Fly reads `,` as a separator). Stricter: unknown and repeated keys are errors, so a
// typo cannot silently route elsewhere.
func ParseReplayHeader(value string) (Replay, error) {
	fields, err := splitReplayFields(value)
	if err != nil {
		return Replay{}, err
	}
	var r Replay
	seen := map[string]bool{}
	for i, f := range fields {
		key, raw, ok := strings.Cut(f, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		if !ok || key == "" {
			return Replay{}, malformed("field %d is not key=value", i+1)
		}
		if seen[key] {
			return Replay{}, malformed("field %q given twice", key)
		}
		seen[key] = true
		v, err := replayValue(key, strings.TrimSpace(raw))
		if err != nil {
			return Replay{}, err
		}
		if err := r.set(key, v); err != nil {
			return Replay{}, err
		}
	}
	return r, r.validate()
}

// splitReplayFields splits on `;` and `,` outside double quotes, then glues a `,` piece without `=`
// back to the field before it (it was part of a list value).
func splitReplayFields(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, malformed("empty value")
	}
	type piece struct {
		text       string
		afterComma bool
	}
	var pieces []piece
	start, inQuote, afterComma := 0, false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++ // the escaped character cannot end the quote
		case c == '"':
			inQuote = !inQuote
		case !inQuote && (c == ';' || c == ','):
			pieces = append(pieces, piece{s[start:i], afterComma})
			start, afterComma = i+1, c == ','
		}
	}
	if inQuote {
		return nil, malformed("unterminated quoted value")
	}
	pieces = append(pieces, piece{s[start:], afterComma})
	var fields []string
	for _, p := range pieces {
		if p.afterComma && !strings.Contains(p.text, "=") && len(fields) > 0 {
			fields[len(fields)-1] += "," + p.text
			continue
		}
		fields = append(fields, p.text)
	}
	return fields, nil
}

// replayValue unquotes a header-form value and checks it is non-empty and header-safe.
func replayValue(key, raw string) (string, error) {
	v := raw
	if strings.HasPrefix(raw, `"`) {
		if len(raw) < 2 || !strings.HasSuffix(raw, `"`) {
			return "", malformed("field %q: bad quoting", key)
		}
		var b strings.Builder
		inner := raw[1 : len(raw)-1]
		for i := 0; i < len(inner); i++ {
			c := inner[i]
			if c == '\\' && i+1 < len(inner) {
				i++
				c = inner[i]
			} else if c == '"' || c == '\\' {
				return "", malformed("field %q: bad quoting", key)
			}
			b.WriteByte(c)
		}
		v = b.String()
	} else if strings.ContainsAny(raw, "\" \t") {
		return "", malformed("field %q: a value with spaces or quotes must be quoted", key)
	}
	if v == "" {
		return "", malformed("field %q is empty", key)
	}
	return v, nil
}

// set stores one header-form field.
func (r *Replay) set(key, v string) error {
	switch key {
	case "region":
		r.Regions = splitRegions(v)
	case "instance":
		r.Instance = v
	case "prefer_instance":
		r.PreferInstance = v
	case "app":
		r.App = v
	case "state":
		r.State = v
	case "elsewhere":
		switch v {
		case "true":
			r.Elsewhere = true
		case "false":
		default:
			return malformed("field \"elsewhere\" must be true or false")
		}
	case "timeout":
		d, err := parseReplayTimeout(v)
		if err != nil {
			return err
		}
		r.Timeout = d
	case "fallback":
		r.Fallback = v
	default:
		return malformed("unknown field %q", key)
	}
	return nil
}

// splitRegions reads a region list; white space around the codes is ignored.
func splitRegions(v string) []string {
	regions := strings.Split(v, ",")
	for i := range regions {
		regions[i] = strings.TrimSpace(regions[i])
	}
	return regions
}

func parseReplayTimeout(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, malformed("field \"timeout\" must be a positive duration such as 10s or 800ms")
	}
	return d, nil
}

// validate checks the fields of either form.
func (r Replay) validate() error {
	for _, region := range r.Regions {
		if !replayRegionRE.MatchString(region) {
			return malformed("field \"region\" must be region codes separated by commas")
		}
	}
	names := []struct{ key, v string }{{"app", r.App}, {"instance", r.Instance}, {"prefer_instance", r.PreferInstance}}
	for _, n := range names {
		if n.v != "" && !replayNameRE.MatchString(n.v) {
			return malformed("field %q is not a Fly name", n.key)
		}
	}
	if len(r.State) > maxReplayFieldLength || !httpguts.ValidHeaderFieldValue(r.State) {
		return malformed("field \"state\" is too long or not header-safe")
	}
	switch r.Fallback {
	case "", FallbackForceSelf, FallbackPreferSelf:
	default:
		return malformed("field \"fallback\" must be force_self or prefer_self")
	}
	if r.Transform != nil {
		return r.Transform.validate()
	}
	return nil
}

func (t *ReplayTransform) validate() error {
	if t.Path != "" {
		u, err := url.ParseRequestURI(t.Path)
		if err != nil || !strings.HasPrefix(t.Path, "/") || u.Host != "" || len(t.Path) > maxReplayFieldLength ||
			strings.ContainsAny(t.Path, " \t\r\n#") {
			return malformed("transform.path must be an absolute path with an optional query")
		}
	}
	for _, h := range t.DeleteHeaders {
		if !httpguts.ValidHeaderFieldName(h) {
			return malformed("transform.delete_headers holds an invalid header name")
		}
	}
	for _, h := range t.SetHeaders {
		if !httpguts.ValidHeaderFieldName(h.Name) || !httpguts.ValidHeaderFieldValue(h.Value) || len(h.Value) > maxReplayFieldLength {
			return malformed("transform.set_headers holds an invalid header")
		}
	}
	return nil
}

// replayJSON is the JSON form. cache and allow_bypass are accepted and ignored: the simulator has no
// replay cache, so every request reaches the app that answers the replay. Open in the sheet: whether
// allow_bypass sits at the top level or in cache; the top level is accepted.
type replayJSON struct {
	Region         string           `json:"region,omitempty"`
	Instance       string           `json:"instance,omitempty"`
	PreferInstance string           `json:"prefer_instance,omitempty"`
	App            string           `json:"app,omitempty"`
	State          string           `json:"state,omitempty"`
	Elsewhere      bool             `json:"elsewhere,omitempty"`
	Timeout        string           `json:"timeout,omitempty"`
	Fallback       string           `json:"fallback,omitempty"`
	Transform      *transformJSON   `json:"transform,omitempty"`
	Cache          *json.RawMessage `json:"cache,omitempty"`
	AllowBypass    bool             `json:"allow_bypass,omitempty"`
}

type transformJSON struct {
	Path          string         `json:"path,omitempty"`
	DeleteHeaders []string       `json:"delete_headers,omitempty"`
	SetHeaders    []ReplayHeader `json:"set_headers,omitempty"`
}

// maxReplayJSON bounds the JSON form's body.
const maxReplayJSON = 64 << 10

// ParseReplayJSON reads the JSON form. Stricter: unknown fields, wrong types and trailing data are
// errors.
func ParseReplayJSON(body []byte) (Replay, error) {
	if len(body) > maxReplayJSON {
		return Replay{}, malformed("JSON form larger than %d bytes", maxReplayJSON)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var in *replayJSON
	if err := dec.Decode(&in); err != nil || in == nil {
		return Replay{}, malformed("JSON form is not a replay object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Replay{}, malformed("JSON form has data after the object")
	}
	r := Replay{
		Instance: in.Instance, PreferInstance: in.PreferInstance, App: in.App, State: in.State,
		Elsewhere: in.Elsewhere, Fallback: in.Fallback,
	}
	if in.Region != "" {
		r.Regions = splitRegions(in.Region)
	}
	if in.Timeout != "" {
		d, err := parseReplayTimeout(in.Timeout)
		if err != nil {
			return Replay{}, err
		}
		r.Timeout = d
	}
	if t := in.Transform; t != nil {
		r.Transform = &ReplayTransform{Path: t.Path, DeleteHeaders: t.DeleteHeaders, SetHeaders: t.SetHeaders}
	}
	return r, r.validate()
}

// HeaderValue writes r in the header form, quoting values that need it. A Transform cannot be
// expressed there and is left out.
func (r Replay) HeaderValue() string {
	var parts []string
	add := func(key, v string) {
		if v != "" {
			parts = append(parts, key+"="+quoteReplayValue(v))
		}
	}
	add("region", strings.Join(r.Regions, ","))
	add("instance", r.Instance)
	add("prefer_instance", r.PreferInstance)
	add("app", r.App)
	add("state", r.State)
	if r.Elsewhere {
		add("elsewhere", "true")
	}
	if r.Timeout > 0 {
		add("timeout", r.Timeout.String())
	}
	add("fallback", r.Fallback)
	return strings.Join(parts, ";")
}

// JSON writes r in the JSON form.
func (r Replay) JSON() []byte {
	out := replayJSON{
		Region: strings.Join(r.Regions, ","), Instance: r.Instance, PreferInstance: r.PreferInstance, App: r.App,
		State: r.State, Elsewhere: r.Elsewhere, Fallback: r.Fallback,
	}
	if r.Timeout > 0 {
		out.Timeout = r.Timeout.String()
	}
	if t := r.Transform; t != nil {
		out.Transform = &transformJSON{Path: t.Path, DeleteHeaders: t.DeleteHeaders, SetHeaders: t.SetHeaders}
	}
	b, err := json.Marshal(out)
	if err != nil {
		panic("flysim: marshalling a replay: " + err.Error()) // strings, bools and slices of them cannot fail
	}
	return b
}

// quoteReplayValue quotes v when it holds a separator, a quote, a backslash, white space or a `=`
// (which would make a `,` inside it read as a field separator).
func quoteReplayValue(v string) string { return quoteIfNeeded(v, ";,\"\\ \t=") }
