package keys

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// forms are the renderings of secret bytes a formatted Root must not hold.
func forms(secret []byte) []string {
	out := []string{
		string(secret), hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret)),
		base64.StdEncoding.EncodeToString(secret), base64.RawURLEncoding.EncodeToString(secret),
	}
	if f := strings.Fields(strings.Trim(fmt.Sprintf("%d", secret), "[]")); len(f) >= 6 {
		out = append(out, strings.Join(f[:6], " "))
	}
	return out
}

func TestRootFormatsRedacted(t *testing.T) {
	root := bytes.Clone(rootBytes)
	for i := range root {
		root[i] = byte(i*11 + 3) // every byte different, so no form is found by chance
	}
	r, err := ParseRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	secrets := [][]byte{root, r.prk}
	type holder struct{ Root Root }
	for _, v := range []any{r, &r, holder{Root: r}, []Root{r}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%X", "%q", "%o", "%b"} {
			out := fmt.Sprintf(verb, v)
			for _, s := range secrets {
				for _, form := range forms(s) {
					if strings.Contains(out, form) {
						t.Errorf("%s of %T holds the key (%q): %s", verb, v, form, out)
					}
				}
			}
			if !strings.Contains(out, "redacted") {
				t.Errorf("%s of %T = %s, want it marked redacted", verb, v, out)
			}
		}
	}

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		slog.New(h).Info("root", "root", r, "holder", holder{Root: r})
	}
	for _, s := range secrets {
		for _, form := range forms(s) {
			if strings.Contains(buf.String(), form) {
				t.Errorf("slog output holds the key (%q): %s", form, buf.String())
			}
		}
	}
	if strings.Count(buf.String(), "redacted") < 2 {
		t.Errorf("slog output %s: want the root shown as redacted", buf.String())
	}
}
