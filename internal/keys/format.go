package keys

import (
	"fmt"
	"io"
	"log/slog"
)

// Format prints String for every verb, so no verb reaches the key's bytes: String and GoString
// cover %v, %s, %x, %q and %#v, but %d or %o would otherwise print the struct and its bytes.
// (fmt never calls the methods of a value in an unexported field: a struct holding a Root that way
// must format itself.)
func (r Root) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, r.String()) }

// LogValue hides the key from log/slog handlers, which otherwise encode the struct themselves.
func (r Root) LogValue() slog.Value { return slog.StringValue(r.String()) }
