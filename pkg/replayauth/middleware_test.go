package replayauth

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestKeyTextForm(t *testing.T) {
	text := EncodeKey(testKey)
	if text != strings.Repeat("42", KeySize) {
		t.Fatalf("EncodeKey = %q, want lower-case hex", text)
	}
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{name: "as encoded", in: text, ok: true},
		{name: "trailing newline", in: text + "\n", ok: true},
		{name: "upper case", in: strings.ToUpper(text), ok: true},
		{name: "empty", in: ""},
		{name: "16 bytes", in: text[:32]},
		{name: "not hex", in: "zz" + text[2:]},
		{name: "base64 of 32 bytes", in: "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := DecodeKey(tt.in)
			if !tt.ok {
				if !errors.Is(err, ErrKeyFormat) {
					t.Fatalf("DecodeKey = %v, want ErrKeyFormat", err)
				}
				if strings.Contains(err.Error(), "zz") {
					t.Errorf("error %q quotes the input", err)
				}
				return
			}
			if err != nil || string(key) != string(testKey) {
				t.Fatalf("DecodeKey = %x, %v; want the key", key, err)
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr bool
	}{
		{name: "complete", env: map[string]string{EnvKey: EncodeKey(testKey), EnvApp: testApp, EnvMachineID: testMach}},
		{name: "no key", env: map[string]string{EnvApp: testApp, EnvMachineID: testMach}, wantErr: true},
		{name: "bad key", env: map[string]string{EnvKey: "abc", EnvApp: testApp, EnvMachineID: testMach}, wantErr: true},
		{name: "no app", env: map[string]string{EnvKey: EncodeKey(testKey), EnvMachineID: testMach}, wantErr: true},
		{name: "no machine", env: map[string]string{EnvKey: EncodeKey(testKey), EnvApp: testApp}, wantErr: true},
		{name: "with a previous key", env: map[string]string{EnvKey: EncodeKey(testKey), EnvPreviousKey: EncodeKey(previousKey), EnvApp: testApp, EnvMachineID: testMach}},
		{name: "bad previous key", env: map[string]string{EnvKey: EncodeKey(testKey), EnvPreviousKey: "abc", EnvApp: testApp, EnvMachineID: testMach}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, name := range []string{EnvKey, EnvPreviousKey, EnvApp, EnvMachineID} {
				t.Setenv(name, tt.env[name])
			}
			cfg, err := FromEnv()
			if tt.wantErr {
				if err == nil {
					t.Fatal("FromEnv = nil error, want one")
				}
				if strings.Contains(err.Error(), EncodeKey(testKey)) {
					t.Errorf("error %q holds the key", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if wantPrevious := tt.env[EnvPreviousKey] != ""; wantPrevious != (string(cfg.PreviousKey) == string(previousKey)) {
				t.Errorf("previous key read = %v, want %v", cfg.PreviousKey != nil, wantPrevious)
			}
			if string(cfg.Key) != string(testKey) || cfg.App != testApp || cfg.MachineID != testMach {
				t.Errorf("FromEnv = %+v, want the environment's values", cfg)
			}
		})
	}
}

func TestMiddleware(t *testing.T) {
	var rejected []error
	cfg := Config{
		Key: testKey, App: testApp, MachineID: testMach,
		Now:      func() time.Time { return testNow },
		OnReject: func(_ *http.Request, err error) { rejected = append(rejected, err) },
	}
	reached := 0
	h := Middleware(cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		_, _ = io.WriteString(w, "hello")
	}))

	valid := srcHeader(Sign(testKey, testApp, testMach, testExp))
	tests := []struct {
		name     string
		header   string
		extra    []string // further fly-replay-src headers
		wantCode int
		wantErr  error
	}{
		{name: "valid", header: valid, wantCode: http.StatusOK},
		{name: "two valid headers", header: valid, extra: []string{valid}, wantCode: http.StatusUnauthorized, wantErr: ErrMultipleSources},
		{name: "forged header first", header: srcHeader(Sign(otherKey, testApp, testMach, testExp)), extra: []string{valid}, wantCode: http.StatusUnauthorized, wantErr: ErrMultipleSources},
		{name: "valid header first", header: valid, extra: []string{"instance=x;state=forged"}, wantCode: http.StatusUnauthorized, wantErr: ErrMultipleSources},
		{name: "two sources in one value", header: valid + "," + valid, wantCode: http.StatusUnauthorized, wantErr: ErrMultipleSources},
		{name: "expires too far ahead", header: srcHeader(Sign(testKey, testApp, testMach, testNow.Add(time.Hour))), wantCode: http.StatusUnauthorized, wantErr: ErrFutureExpiry},
		{name: "missing", header: "", wantCode: http.StatusUnauthorized, wantErr: ErrMissing},
		{name: "other machine", header: srcHeader(Sign(testKey, testApp, otherMach, testExp)), wantCode: http.StatusUnauthorized, wantErr: ErrWrongMachine},
		{name: "forged", header: srcHeader(Sign(otherKey, testApp, testMach, testExp)), wantCode: http.StatusUnauthorized, wantErr: ErrBadMAC},
		{name: "expired", header: srcHeader(Sign(testKey, testApp, testMach, testNow)), wantCode: http.StatusUnauthorized, wantErr: ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached, rejected = 0, nil
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.header != "" {
				req.Header.Set(HeaderSource, tt.header)
			}
			for _, v := range tt.extra {
				req.Header.Add(HeaderSource, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Fatalf("code = %d, want %d", rec.Code, tt.wantCode)
			}
			if tt.wantErr == nil {
				if reached != 1 || rec.Body.String() != "hello" || len(rejected) != 0 {
					t.Fatalf("reached=%d body=%q rejected=%v, want the inner handler once", reached, rec.Body, rejected)
				}
				return
			}
			if reached != 0 {
				t.Fatal("inner handler reached on a refused request")
			}
			if len(rejected) != 1 || !errors.Is(rejected[0], tt.wantErr) {
				t.Fatalf("OnReject got %v, want %v", rejected, tt.wantErr)
			}
			if body := rec.Body.String(); body != "unauthorized\n" {
				t.Errorf("body = %q, want the fixed text", body)
			}
		})
	}
}

func TestMiddlewarePanicsWithoutKey(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Middleware accepted a Config without a key")
		}
	}()
	Middleware(Config{App: testApp, MachineID: testMach}, http.NotFoundHandler())
}

// TestConfigLifetimeBounds: Config's MaxLifetime and Skew move the bound on how far ahead an
// accepted state may expire; zero means the defaults; negative values are a configuration error.
func TestConfigLifetimeBounds(t *testing.T) {
	in50m := srcHeader(Sign(testKey, testApp, testMach, testNow.Add(50*time.Minute)))
	in11m := srcHeader(Sign(testKey, testApp, testMach, testNow.Add(11*time.Minute)))
	tests := []struct {
		name        string
		maxLifetime time.Duration
		skew        time.Duration
		header      string
		want        error
	}{
		{name: "defaults refuse 50m", header: in50m, want: ErrFutureExpiry},
		{name: "defaults refuse 11m", header: in11m, want: ErrFutureExpiry},
		{name: "an hour's lifetime accepts 50m", maxLifetime: time.Hour, header: in50m},
		{name: "a 2m skew accepts 11m", skew: 2 * time.Minute, header: in11m},
		{name: "a 1m lifetime and 1s skew refuse 11m", maxLifetime: time.Minute, skew: time.Second, header: in11m, want: ErrFutureExpiry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Key: testKey, App: testApp, MachineID: testMach, MaxLifetime: tt.maxLifetime, Skew: tt.skew,
				Now: func() time.Time { return testNow }}
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set(HeaderSource, tt.header)
			err := cfg.Verify(req)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	for _, cfg := range []Config{
		{Key: testKey, App: testApp, MachineID: testMach, MaxLifetime: -time.Second},
		{Key: testKey, App: testApp, MachineID: testMach, Skew: -time.Second},
	} {
		if err := cfg.validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("validate(MaxLifetime %v, Skew %v) = %v, want ErrConfig", cfg.MaxLifetime, cfg.Skew, err)
		}
	}
}

// previousKey is the app's replay key of the generation before testKey's.
var previousKey = []byte("0123456789abcdef0123456789abcdef")

// TestVerifyDuringARotation: while a rotation overlaps, a state signed with the previous key is
// accepted when the machine holds it, and refused once it no longer does; a state signed with
// another app's key is refused either way.
func TestVerifyDuringARotation(t *testing.T) {
	now := func() time.Time { return testNow }
	request := func(key []byte) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set(HeaderSource, srcHeader(Sign(key, testApp, testMach, testNow.Add(time.Minute))))
		return r
	}
	during := Config{Key: testKey, PreviousKey: previousKey, App: testApp, MachineID: testMach, Now: now}
	after := Config{Key: testKey, App: testApp, MachineID: testMach, Now: now}
	other := []byte("another app's key, 32 bytes long")
	cases := []struct {
		name    string
		cfg     Config
		signed  []byte
		wantErr error
	}{
		{"current key during the overlap", during, testKey, nil},
		{"previous key during the overlap", during, previousKey, nil},
		{"previous key after the overlap", after, previousKey, ErrBadMAC},
		{"another key during the overlap", during, other, ErrBadMAC},
	}
	for _, tc := range cases {
		if err := tc.cfg.Verify(request(tc.signed)); !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: Verify = %v, want %v", tc.name, err, tc.wantErr)
		}
	}
}
