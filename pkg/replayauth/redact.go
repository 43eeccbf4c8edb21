package replayauth

import (
	"fmt"
	"io"
	"log/slog"
)

// String shows the configuration without the key.
func (c Config) String() string {
	previous := "none"
	if c.PreviousKey != nil {
		previous = "[redacted]"
	}
	return "replayauth.Config{Key:[redacted] PreviousKey:" + previous + " App:" + c.App + " MachineID:" + c.MachineID +
		" MaxLifetime:" + c.MaxLifetime.String() + " Skew:" + c.Skew.String() + "}"
}

// Format prints String for every fmt verb (%v, %+v, %#v, %s, %x, %d, ...), so printing a Config
// never prints its key.
func (c Config) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// MarshalLog keeps the key out of logr-based logs.
func (c Config) MarshalLog() any { return c.String() }

// LogValue keeps the key out of log/slog output.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }
