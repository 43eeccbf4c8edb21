package flyapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Duration is a time span in a machine config (check intervals, stop timeouts). It is written as
// a Go duration string ("15s"), the form Fly's examples and clients use, and read from either a
// string or a JSON number of nanoseconds, the form Fly's prose documents.
type Duration time.Duration

// DurationOf returns a pointer to d as a Duration, for the optional duration fields of a config.
func DurationOf(d time.Duration) *Duration {
	v := Duration(d)
	return &v
}

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String returns the Go duration string, e.g. "1m30s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a Go duration string or a whole number of nanoseconds.
func (d *Duration) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if bytes.Equal(data, []byte("null")) {
		return nil
	}
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		parsed, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q: %w", s, err)
		}
		*d = Duration(parsed)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(data, &n); err != nil {
		return fmt.Errorf("duration must be a string or a number of nanoseconds: %w", err)
	}
	if i, err := n.Int64(); err == nil {
		*d = Duration(i)
		return nil
	}
	// A number such as 1.5e10 is still a whole number of nanoseconds; fractions are refused
	// rather than rounded, so decoding never changes the value.
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return fmt.Errorf("duration %s is not a whole number of nanoseconds", n)
	}
	*d = Duration(int64(f))
	return nil
}

// Autostop says what the Fly Proxy does with an idle machine of a service.
//
// Fly accepts a string ("off", "stop", "suspend") or a bool, and answers with false/true for
// off/stop and "suspend" for suspend. This type reads all of these and always writes the string:
// only the string form can say "suspend", and one written form keeps a config's encoding (and so
// its hash) the same whether it came from a user or from Fly's answer.
type Autostop string

// Autostop values.
const (
	AutostopOff     Autostop = "off"
	AutostopStop    Autostop = "stop"
	AutostopSuspend Autostop = "suspend"
)

// UnmarshalJSON reads a bool (false = off, true = stop) or a string.
func (a *Autostop) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, []byte("null")):
		return nil
	case bytes.Equal(data, []byte("true")):
		*a = AutostopStop
		return nil
	case bytes.Equal(data, []byte("false")):
		*a = AutostopOff
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("autostop must be a bool or a string: %w", err)
	}
	*a = Autostop(s)
	return nil
}

// MarshalJSON writes the string form (see the type's comment for why).
func (a Autostop) MarshalJSON() ([]byte, error) { return json.Marshal(string(a)) }

// IntPtr returns a pointer to v, for the optional fields of a config.
func IntPtr(v int) *int { return &v }

// BoolPtr returns a pointer to v.
func BoolPtr(v bool) *bool { return &v }

// StringPtr returns a pointer to v.
func StringPtr(v string) *string { return &v }
