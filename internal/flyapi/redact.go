package flyapi

import (
	"fmt"
	"io"
	"log/slog"
)

// Values that hold the Fly API token format as redacted under every fmt verb (fmt.Formatter wins
// over String and GoString and also covers %d, %x and %q). fmt never calls the methods of a value
// in an unexported field, so Client, which holds its TokenSource that way, formats itself (and a
// struct holding an Options or a Client by value in an unexported field would have to as well).

const redactedToken = "[redacted]"

func writeRedacted(f fmt.State, s string) { _, _ = io.WriteString(f, s) }

// String hides the token.
func (staticToken) String() string { return "flyapi.StaticToken(" + redactedToken + ")" }

// Format prints String for every verb.
func (t staticToken) Format(f fmt.State, _ rune) { writeRedacted(f, t.String()) }

// MarshalLog keeps the token out of logr-based logs.
func (t staticToken) MarshalLog() any { return t.String() }

// LogValue keeps the token out of log/slog output.
func (t staticToken) LogValue() slog.Value { return slog.StringValue(t.String()) }

// String names the file, not the token read from it.
func (f *fileToken) String() string { return "flyapi.FileToken(" + f.path + ")" }

// Format prints String for every verb.
func (f *fileToken) Format(s fmt.State, _ rune) { writeRedacted(s, f.String()) }

// MarshalLog keeps the token out of logr-based logs.
func (f *fileToken) MarshalLog() any { return f.String() }

// String hides the header value and the token parts.
func (credential) String() string { return "flyapi.credential{" + redactedToken + "}" }

// Format prints String for every verb.
func (c credential) Format(f fmt.State, _ rune) { writeRedacted(f, c.String()) }

// String names the API the client calls, not its token.
func (c Client) String() string {
	return "flyapi.Client{baseURL:" + c.baseURL + " token:" + redactedToken + "}"
}

// Format prints String for every verb.
func (c Client) Format(f fmt.State, _ rune) { writeRedacted(f, c.String()) }

// MarshalLog keeps the token out of logr-based logs.
func (c Client) MarshalLog() any { return c.String() }
