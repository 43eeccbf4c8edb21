package replayauth

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestConfigFormatsRedacted(t *testing.T) {
	key := make([]byte, KeySize)
	for i := range key {
		key[i] = byte(i*13 + 5) // every byte different, so no form is found by chance
	}
	forms := []string{
		string(key), EncodeKey(key), strings.ToUpper(hex.EncodeToString(key)),
		base64.StdEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key),
		strings.Join(strings.Fields(strings.Trim(fmt.Sprintf("%d", key), "[]"))[:6], " "),
	}
	cfg := Config{Key: key, App: testApp, MachineID: testMach}
	type holder struct{ Config Config }
	check := func(what, out string) {
		t.Helper()
		for _, form := range forms {
			if strings.Contains(out, form) {
				t.Errorf("%s holds the key (%q): %s", what, form, out)
			}
		}
		if !strings.Contains(out, "[redacted]") || !strings.Contains(out, testApp) {
			t.Errorf("%s = %s: want the key redacted and the app named", what, out)
		}
	}
	for _, v := range []any{cfg, &cfg, holder{Config: cfg}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%X", "%q"} {
			check(fmt.Sprintf("%s of %T", verb, v), fmt.Sprintf(verb, v))
		}
	}
	check("MarshalLog", fmt.Sprint(cfg.MarshalLog()))
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "cfg", cfg)
	check("slog JSON", buf.String())
}
