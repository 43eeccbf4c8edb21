package router

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/keys"

	"github.com/go-logr/logr"
)

// secretForms are the ways fmt (or a careless caller) could render secret bytes: raw, hex in both
// cases, base64 in its four alphabets, and the decimal list of %v on a byte slice.
func secretForms(secret []byte) []string {
	forms := []string{
		string(secret),
		hex.EncodeToString(secret),
		strings.ToUpper(hex.EncodeToString(secret)),
		base64.StdEncoding.EncodeToString(secret),
		base64.RawStdEncoding.EncodeToString(secret),
		base64.URLEncoding.EncodeToString(secret),
		base64.RawURLEncoding.EncodeToString(secret),
	}
	dec := strings.Trim(fmt.Sprintf("%d", secret), "[]")
	if f := strings.Fields(dec); len(f) >= 6 {
		forms = append(forms, strings.Join(f[:6], " "))
	}
	// Any 12-byte window of the raw or hex form is enough to notice (a value may be cut or wrapped).
	for i := 0; i+12 <= len(secret); i += 8 {
		forms = append(forms, hex.EncodeToString(secret[i:i+12]), string(secret[i:i+12]))
	}
	return forms
}

// checkRedacted formats v under every verb a log line or an error could use and fails when the
// output holds any form of a secret.
func checkRedacted(t *testing.T, v any, secrets ...[]byte) {
	t.Helper()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%X", "%q"} {
		out := fmt.Sprintf(verb, v)
		for _, s := range secrets {
			for _, form := range secretForms(s) {
				if form != "" && strings.Contains(out, form) {
					t.Errorf("%s of %T holds a secret (%q): %s", verb, v, form, out)
				}
			}
		}
		if !strings.Contains(out, "redacted") {
			t.Errorf("%s of %T = %s: want it marked redacted", verb, v, out)
		}
		if strings.Contains(out, "prk") {
			t.Errorf("%s of %T shows the root key's field: %s", verb, v, out)
		}
	}
}

// distinctKey is a key no other test value looks like: every byte differs from its neighbours.
func distinctKey(seed byte) []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = seed + byte(i)*7
	}
	return b
}

func TestSecretsFormatRedacted(t *testing.T) {
	replayKey := distinctKey(0x90)
	token := []byte(base64.RawURLEncoding.EncodeToString(distinctKey(0x11)))
	src := &replaySource{app: "alice-app", machine: aliceID, key: replayKey,
		cfg: &sourceConfig{clock: newStateClock(time.Minute), opts: ReplayOptions{Form: FormJSON}}, deleteAuth: true}
	values := src.values(testNow)
	// The state's MAC is what makes it a credential (its other parts are public names and a time).
	stateParts := strings.Split(strings.SplitN(values.header[0], "state=", 2)[1], ".")
	state := []byte(strings.SplitN(stateParts[3], ";", 2)[0])
	tgt := target{kind: ownerMachine, namespace: "alice", name: "ws", flyApp: "alice-app", machine: aliceID,
		ready: true, replay: src, managementToken: token}
	verifier, err := NewTokenVerifier(tokenKey, TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := world(t)
	root := r.root
	builderSecrets := [][]byte{testRootBytes, root.ReplayKey(keys.App{FlyApp: "alice-app", Generation: 1}), []byte(root.ManagementToken(keys.App{FlyApp: "alice-app", Generation: 1}))}

	tests := []struct {
		name    string
		v       any
		secrets [][]byte
	}{
		{"appSecrets", appSecrets{replayKey: replayKey, managementToken: token}, [][]byte{replayKey, token}},
		{"*appSecrets", &appSecrets{replayKey: replayKey, managementToken: token}, [][]byte{replayKey, token}},
		{"*replaySource", src, [][]byte{replayKey, state}},
		{"replayValues", *values, [][]byte{state}},
		{"*replayValues", values, [][]byte{state}},
		{"target", tgt, [][]byte{token, replayKey, state}},
		{"*target", &tgt, [][]byte{token, replayKey, state}},
		{"*Builder", r.builder, builderSecrets},
		{"*TokenVerifier", verifier, [][]byte{tokenKey}},
		{"TokenVerifier", *verifier, [][]byte{tokenKey}},
		{"BuildConfig", BuildConfig{Root: root}, [][]byte{testRootBytes}},
		{"Config", Config{Root: root, Tokens: verifier}, [][]byte{testRootBytes, tokenKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRedacted(t, tt.v, tt.secrets...)
		})
	}
}

// TestFormatsStillSayWhatTheValueIs: redaction keeps the fields that help a reader.
func TestFormatsStillSayWhatTheValueIs(t *testing.T) {
	src := &replaySource{app: "alice-app", machine: aliceID, key: distinctKey(1), cfg: &sourceConfig{clock: newStateClock(0)}}
	tgt := &target{kind: ownerApp, namespace: "alice", name: "alice", flyApp: "alice-app"}
	for _, c := range []struct {
		v    any
		want []string
	}{
		{src, []string{"alice-app", aliceID}},
		{tgt, []string{"UserApp alice/alice", "alice-app"}},
		{newTestRouter(t).builder, []string{"apps.example.net"}},
	} {
		out := fmt.Sprintf("%+v", c.v)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%T formats as %q, want it to name %q", c.v, out, w)
			}
		}
	}
}

// TestTokenVerifierLogsRedacted: logr-based loggers (zapr) call MarshalLog.
func TestTokenVerifierLogsRedacted(t *testing.T) {
	v, err := NewTokenVerifier(tokenKey, TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var m logr.Marshaler = v
	out := fmt.Sprint(m.MarshalLog())
	if bytes.Contains([]byte(out), tokenKey) || !strings.Contains(out, redactedValue) {
		t.Errorf("MarshalLog = %q, want the key redacted", out)
	}
}
