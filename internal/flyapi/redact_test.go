package flyapi

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTokenHoldersFormatRedacted(t *testing.T) {
	const secret = "fm2_lJPECAAAAAAAAIsvxBDSecretMacaroonBody0123456789abcdef"
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := FileToken(path)
	if tok, err := file.Token(); err != nil || tok != secret {
		t.Fatalf("FileToken = %q, %v", tok, err) // now cached in the source
	}
	cred, err := credentialFor("Bearer FlyV1 " + secret)
	if err != nil {
		t.Fatal(err)
	}
	client, err := New(Options{Token: StaticToken(secret)})
	if err != nil {
		t.Fatal(err)
	}
	type holder struct {
		Opts   Options
		Client *Client
	}
	values := []any{
		StaticToken(secret), file, cred, &cred, client, *client,
		Options{Token: StaticToken(secret)}, Options{Token: file}, holder{Opts: Options{Token: StaticToken(secret)}, Client: client},
	}
	// The token itself, and any 16-character window of its body (a cut or wrapped rendering).
	forms := []string{secret, fmt.Sprintf("%x", secret)}
	for i := 4; i+16 <= len(secret); i += 8 {
		forms = append(forms, secret[i:i+16])
	}
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q"} {
			out := fmt.Sprintf(verb, v)
			for _, form := range forms {
				if strings.Contains(out, form) {
					t.Errorf("%s of %T holds the token (%q): %s", verb, v, form, out)
				}
			}
		}
	}
	for _, v := range []any{StaticToken(secret), file, cred, client} {
		if out := fmt.Sprintf("%+v", v); !strings.Contains(out, "redacted") && !strings.Contains(out, path) {
			t.Errorf("%T formats as %q: want it marked redacted (or naming its file)", v, out)
		}
	}
}
