package router

import (
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/keys"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hangar-dev/hangar/pkg/replayauth"
)

const (
	aliceID   = "a1a1a1a1a1a1a1"
	specialID = "5e5e5e5e5e5e5e"
	multiID1  = "b1b1b1b1b1b1b1"
	multiID2  = "b2b2b2b2b2b2b2"
	secureID  = "c1c1c1c1c1c1c1"
	bootingID = "d1d1d1d1d1d1d1"
	soloID    = "e1e1e1e1e1e1e1"
)

var tokenKey = []byte(strings.Repeat("k", 32))

// world is the cluster most handler tests run against. alice has two machines (so her hosts replay
// to the app), one of them pinned by its own host; solo has one machine (pinned by the app's host).
func world(t testing.TB, opts ...routerOpt) *testRouter {
	r := newTestRouter(t, opts...)
	return r.set(
		newApp("alice", "alice", "alice-app", hosts("alice.example.com", "xn--bcher-kva.example.com"), subdomain("alice")),
		newMachine("alice", "ws", "alice", "alice-app", aliceID),
		newMachine("alice", "special", "alice", "alice-app", specialID, machineHosts("special.example.com")),
		newApp("solo", "solo", "solo-app", hosts("solo.example.com")),
		newMachine("solo", "vm", "solo", "solo-app", soloID),
		newApp("multi", "multi", "multi-app", hosts("multi.example.com")),
		newMachine("multi", "m1", "multi", "multi-app", multiID1),
		newMachine("multi", "m2", "multi", "multi-app", multiID2),
		newApp("pending", "pending", "", hosts("pending.example.com")),
		newApp("empty", "empty", "empty-app", hosts("empty.example.com")),
		newApp("booting", "booting", "booting-app", hosts("booting.example.com")),
		newMachine("booting", "vm", "booting", "booting-app", bootingID, notCreated()),
		newApp("secure", "secure", "secure-app", hosts("secure.example.com"), tokenAuth()),
		newMachine("secure", "vm", "secure", "secure-app", secureID),
	)
}

func signToken(t testing.TB, key []byte, claims jwt.RegisteredClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func coordinatorToken(t testing.TB, aud string) string {
	return signToken(t, tokenKey, jwt.RegisteredClaims{
		Audience:  jwt.ClaimStrings{aud},
		IssuedAt:  jwt.NewNumericDate(testNow),
		ExpiresAt: jwt.NewNumericDate(testNow.Add(time.Minute)),
	})
}

func testVerifier(t testing.TB) *TokenVerifier {
	v, err := NewTokenVerifier(tokenKey, TokenOptions{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantAnswer is what a handler table row expects.
type wantAnswer struct {
	code         int
	app          string // for replays
	instance     string
	deleteAuth   bool
	jsonForm     bool
	retryAfter   bool
	authenticate bool
}

func checkAnswer(t *testing.T, r *testRouter, rec interface {
	Result() *http.Response
}, want wantAnswer) {
	t.Helper()
	res := rec.Result()
	defer func() { _ = res.Body.Close() }()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != want.code {
		t.Fatalf("status = %d (%q), want %d", res.StatusCode, body, want.code)
	}
	if want.code != ReplayStatus {
		if res.Header.Get(HeaderReplay) != "" || res.Header.Get("Content-Type") == ReplayJSONMediaType {
			t.Fatalf("a %d answer carries a replay", want.code)
		}
		if got := res.Header.Get("Retry-After") != ""; got != want.retryAfter {
			t.Errorf("Retry-After present = %v, want %v", got, want.retryAfter)
		}
		if got := res.Header.Get("WWW-Authenticate") == "Bearer"; got != want.authenticate {
			t.Errorf("WWW-Authenticate: Bearer present = %v, want %v", got, want.authenticate)
		}
		if len(body) == 0 || len(body) > 64 {
			t.Errorf("error body %q: want a short fixed text", body)
		}
		return
	}
	if ct := res.Header.Get("Content-Type"); ct == ReplayJSONMediaType {
		if !want.jsonForm && !want.deleteAuth {
			t.Errorf("JSON form used, want the header form")
		}
	} else if want.jsonForm || want.deleteAuth {
		t.Errorf("header form used, want JSON")
	}
	got := readReplay(t, res.Header, body)
	if got.App != want.app || got.Instance != want.instance {
		t.Errorf("replay app=%q instance=%q, want app=%q instance=%q", got.App, got.Instance, want.app, want.instance)
	}
	var deleted []string
	if got.Transform != nil {
		deleted = got.Transform.DeleteHeaders
	}
	if gotDelete := len(deleted) == 1 && deleted[0] == "Authorization"; gotDelete != want.deleteAuth {
		t.Errorf("replay deletes %v, want Authorization deleted = %v", deleted, want.deleteAuth)
	}
	// The state must verify on the machine the Fly Proxy picks, with the key hangar gives the app.
	machine := want.instance
	if machine == "" {
		machine = "ffffffffffffff" // any machine of the app
	}
	src := "instance=148ed193b95948;region=ord;t=1;state=" + got.State
	if err := replayauth.Verify(r.root.ReplayKey(keys.App{FlyApp: want.app, Generation: 1}), src, want.app, machine, testNow); err != nil {
		t.Errorf("state %q does not verify on %s: %v", got.State, machine, err)
	}
}

func TestPublicAnswers(t *testing.T) {
	r := world(t, withTokens(testVerifier(t)))
	bigBody := strings.Repeat("x", DefaultMaxBodyBytes+1)
	tests := []struct {
		name string
		req  request
		want wantAnswer
	}{
		{"exact host", request{host: "alice.example.com"}, wantAnswer{code: 409, app: "alice-app"}},
		{"port, case and trailing dot", request{host: "ALICE.Example.com.:8080"}, wantAnswer{code: 409, app: "alice-app"}},
		{"subdomain under the base domain", request{host: "alice.apps.example.net"}, wantAnswer{code: 409, app: "alice-app"}},
		{"internationalised host", request{host: "Bücher.example.com"}, wantAnswer{code: 409, app: "alice-app"}},
		{"machine host wins and pins", request{host: "special.example.com"}, wantAnswer{code: 409, app: "alice-app", instance: specialID}},
		{"one machine: pinned", request{host: "solo.example.com"}, wantAnswer{code: 409, app: "solo-app", instance: soloID}},
		{"several machines: app only", request{host: "multi.example.com"}, wantAnswer{code: 409, app: "multi-app"}},
		{"small chunked body", request{method: http.MethodPost, host: "alice.example.com", body: strings.NewReader("hi"), length: -1}, wantAnswer{code: 409, app: "alice-app"}},
		{"body of exactly 1 MiB", request{method: http.MethodPost, host: "alice.example.com", body: strings.NewReader(bigBody[1:]), length: DefaultMaxBodyBytes}, wantAnswer{code: 409, app: "alice-app"}},
		{"unknown host", request{host: "nobody.example.com"}, wantAnswer{code: 404}},
		{"base domain itself", request{host: "apps.example.net"}, wantAnswer{code: 404}},
		{"IP literal", request{host: "[::1]:8080"}, wantAnswer{code: 404}},
		{"app without Fly app yet", request{host: "pending.example.com"}, wantAnswer{code: 503, retryAfter: true}},
		{"app without machines", request{host: "empty.example.com"}, wantAnswer{code: 503, retryAfter: true}},
		{"machine not created", request{host: "booting.example.com"}, wantAnswer{code: 503, retryAfter: true}},
		{"empty host", request{host: ""}, wantAnswer{code: 400}},
		{"host with a space", request{host: "alice example.com"}, wantAnswer{code: 400}},
		{"host with a bad port", request{host: "alice.example.com:http"}, wantAnswer{code: 400}},
		{"label too long", request{host: strings.Repeat("a", 64) + ".example.com"}, wantAnswer{code: 400}},
		{"Content-Length over 1 MiB", request{method: http.MethodPost, host: "alice.example.com", body: strings.NewReader(bigBody), length: int64(len(bigBody))}, wantAnswer{code: 413}},
		{"chunked body over 1 MiB", request{method: http.MethodPost, host: "alice.example.com", body: strings.NewReader(bigBody), length: -1}, wantAnswer{code: 413}},
		{"token app without token", request{host: "secure.example.com"}, wantAnswer{code: 401, authenticate: true}},
		{"token app, basic auth", request{host: "secure.example.com", header: hdr("Authorization", "Basic YTpi")}, wantAnswer{code: 401, authenticate: true}},
		{"token app, garbage token", request{host: "secure.example.com", header: hdr("Authorization", bearer("not.a.jwt"))}, wantAnswer{code: 401, authenticate: true}},
		{"token app, token for another app", request{host: "secure.example.com", header: hdr("Authorization", bearer(coordinatorToken(t, "alice-app")))}, wantAnswer{code: 403}},
		{"token app, valid token", request{host: "secure.example.com", header: hdr("Authorization", bearer(coordinatorToken(t, "secure-app")))}, wantAnswer{code: 409, app: "secure-app", instance: secureID, deleteAuth: true}},
		{"public app ignores Authorization", request{host: "alice.example.com", header: hdr("Authorization", bearer("whatever"))}, wantAnswer{code: 409, app: "alice-app"}},
		{"a failed replay sent back (fallback) is not replayed again", request{host: "alice.example.com", header: hdr("Fly-Replay-Failed", "app=alice-app;reason=timeout;elapsed_ms=10000")}, wantAnswer{code: 503, retryAfter: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkAnswer(t, r, r.do(tt.req), tt.want)
		})
	}
}

func TestManagementAnswers(t *testing.T) {
	r := world(t)
	aliceToken := r.root.ManagementToken(keys.App{FlyApp: "alice-app", Generation: 1})
	multiToken := r.root.ManagementToken(keys.App{FlyApp: "multi-app", Generation: 1})
	// Same length and alphabet as the real token, one character changed.
	almost := aliceToken[:10] + string(rune('A'+(aliceToken[10]-'A'+1)%26)) + aliceToken[11:]
	auth := func(tok string) http.Header { return hdr("Authorization", bearer(tok)) }
	target := func(ref, tok string) http.Header { h := auth(tok); h.Set(TargetHeader, ref); return h }
	bigBody := strings.NewReader(strings.Repeat("x", DefaultMaxBodyBytes+1))

	tests := []struct {
		name string
		req  request
		want wantAnswer
	}{
		{"Hangar-Target and the app's token", request{host: "router.internal:9090", header: target("alice/ws", aliceToken)}, wantAnswer{code: 409, app: "alice-app", instance: aliceID}},
		{"Hangar-Target of the other machine", request{host: "router.internal", header: target("alice/special", aliceToken)}, wantAnswer{code: 409, app: "alice-app", instance: specialID}},
		{"Hangar-Target agreeing with Host", request{host: "alice.example.com", header: target("alice/special", aliceToken)}, wantAnswer{code: 409, app: "alice-app", instance: specialID}},
		{"by host", request{host: "multi.example.com", header: auth(multiToken)}, wantAnswer{code: 409, app: "multi-app"}},
		{"lower-case bearer scheme", request{host: "alice.example.com", header: hdr("Authorization", "bearer "+aliceToken)}, wantAnswer{code: 409, app: "alice-app"}},
		{"token app: management token is enough", request{host: "secure.example.com", header: auth(r.root.ManagementToken(keys.App{FlyApp: "secure-app", Generation: 1}))}, wantAnswer{code: 409, app: "secure-app", instance: secureID}},
		{"wrong token", request{host: "alice.example.com", header: auth("wrong")}, wantAnswer{code: 401, authenticate: true}},
		{"empty token", request{host: "alice.example.com", header: hdr("Authorization", "Bearer ")}, wantAnswer{code: 401, authenticate: true}},
		{"right length, wrong token", request{host: "alice.example.com", header: auth(almost)}, wantAnswer{code: 401, authenticate: true}},
		{"another app's token", request{host: "alice.example.com", header: auth(multiToken)}, wantAnswer{code: 401, authenticate: true}},
		{"token with a suffix", request{host: "alice.example.com", header: auth(aliceToken + "x")}, wantAnswer{code: 401, authenticate: true}},
		{"no Authorization", request{host: "alice.example.com"}, wantAnswer{code: 401, authenticate: true}},
		{"token outside the bearer scheme", request{host: "alice.example.com", header: hdr("Authorization", aliceToken)}, wantAnswer{code: 401, authenticate: true}},
		{"unknown Hangar-Target", request{host: "router.internal", header: target("alice/nope", aliceToken)}, wantAnswer{code: 401, authenticate: true}},
		{"another app's machine, own app's token", request{host: "router.internal", header: target("multi/m1", aliceToken)}, wantAnswer{code: 401, authenticate: true}},
		{"malformed Hangar-Target", request{host: "router.internal", header: target("alice", aliceToken)}, wantAnswer{code: 400}},
		{"Hangar-Target with two slashes", request{host: "router.internal", header: target("alice/ws/x", aliceToken)}, wantAnswer{code: 400}},
		{"Hangar-Target upper case", request{host: "router.internal", header: target("Alice/ws", aliceToken)}, wantAnswer{code: 400}},
		{"two Hangar-Target headers", request{host: "router.internal", header: func() http.Header {
			h := target("alice/ws", aliceToken)
			h.Add(TargetHeader, "multi/m1")
			return h
		}()}, wantAnswer{code: 400}},
		{"Hangar-Target contradicting Host", request{host: "multi.example.com", header: target("alice/ws", aliceToken)}, wantAnswer{code: 421}},
		{"unknown host", request{host: "nobody.example.com", header: auth(aliceToken)}, wantAnswer{code: 401, authenticate: true}},
		{"malformed host", request{host: "alice example.com", header: auth(aliceToken)}, wantAnswer{code: 400}},
		{"machine not created, right token", request{host: "router.internal", header: target("booting/vm", r.root.ManagementToken(keys.App{FlyApp: "booting-app", Generation: 1}))}, wantAnswer{code: 503, retryAfter: true}},
		{"machine not created, no token", request{host: "router.internal", header: target("booting/vm", "")}, wantAnswer{code: 401, authenticate: true}},
		{"app without Fly app yet", request{host: "pending.example.com", header: auth(aliceToken)}, wantAnswer{code: 401, authenticate: true}},
		{"app without machines, right token", request{host: "empty.example.com", header: auth(r.root.ManagementToken(keys.App{FlyApp: "empty-app", Generation: 1}))}, wantAnswer{code: 503, retryAfter: true}},
		{"Hangar-Target contradicting Host, no token", request{host: "multi.example.com", header: target("alice/ws", "")}, wantAnswer{code: 401, authenticate: true}},
		{"body over 1 MiB", request{method: http.MethodPut, host: "alice.example.com", header: auth(aliceToken), body: bigBody, length: DefaultMaxBodyBytes + 1}, wantAnswer{code: 413}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.mgmt = true
			checkAnswer(t, r, r.do(tt.req), tt.want)
		})
	}
}

// TestManagementHasNoExistenceOracle: without the token of the app a management request names, the
// answer is the same 401, byte for byte (status, headers, body), whatever the reference names: a
// ready machine, a machine that does not exist, one in an unknown namespace, one whose app has no
// Fly app yet, one whose Fly machine is not created, one whose UserApp is missing, another app's
// machine (with a valid token of the caller's own app), or the same by Host.
func TestManagementHasNoExistenceOracle(t *testing.T) {
	r := world(t)
	r.set(
		newMachine("pending", "vm", "pending", "", "", notCreated()),
		newMachine("orphan", "vm", "gone", "orphan-app", "0a0a0a0a0a0a0a"),
	)
	aliceToken := r.root.ManagementToken(keys.App{FlyApp: "alice-app", Generation: 1})
	multiToken := r.root.ManagementToken(keys.App{FlyApp: "multi-app", Generation: 1})
	refs := []string{"alice/ws", "alice/nope", "nobody/ws", "pending/vm", "booting/vm", "orphan/vm", "multi/m1", "empty/none"}
	hostNames := []string{"alice.example.com", "nobody.example.com", "pending.example.com", "empty.example.com", "secure.example.com", "router.internal"}
	auths := map[string]string{
		"none":                  "",
		"wrong":                 "Bearer " + strings.Repeat("A", len(aliceToken)),
		"basic":                 "Basic YTpi",
		"another app's (multi)": "Bearer " + multiToken,
	}

	type answer struct {
		code   int
		header http.Header
		body   string
	}
	answerOf := func(req request) answer {
		req.mgmt = true
		rec := r.do(req)
		return answer{rec.Code, rec.Header(), rec.Body.String()}
	}
	reference := answerOf(request{host: "alice.example.com"})
	if reference.code != http.StatusUnauthorized || reference.header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("reference answer %d %v, want 401 with WWW-Authenticate: Bearer", reference.code, reference.header)
	}
	check := func(name string, req request) {
		t.Helper()
		if got := answerOf(req); got.code != reference.code || got.body != reference.body || !maps.EqualFunc(got.header, reference.header, slices.Equal) {
			t.Errorf("%s: %d %v %q, want the same answer as any refused request: %d %v %q",
				name, got.code, got.header, got.body, reference.code, reference.header, reference.body)
		}
	}
	before := counterValue(t, r.metrics.requests[ListenerManagement][outcomeUnauthorized])
	sent := 0
	for authName, auth := range auths {
		for _, ref := range refs {
			if ref == "multi/m1" && authName == "another app's (multi)" {
				continue // that one is multi's own token
			}
			h := hdr(TargetHeader, ref)
			if auth != "" {
				h.Set("Authorization", auth)
			}
			// A Host of another app would be 421 once authenticated; without the token it is not told.
			check(authName+" token, Hangar-Target "+ref, request{host: "multi.example.com", header: h})
			sent++
		}
		for _, host := range hostNames {
			var h http.Header
			if auth != "" {
				h = hdr("Authorization", auth)
			}
			check(authName+" token, Host "+host, request{host: host, header: h})
			sent++
		}
	}
	// A valid token of one app gets the same answer for any target outside that app, existing or not.
	for _, ref := range []string{"multi/m1", "solo/vm", "nobody/vm", "pending/vm", "orphan/vm"} {
		check("alice's token, Hangar-Target "+ref, request{host: "router.internal", header: hdr(TargetHeader, ref, "Authorization", bearer(aliceToken))})
		sent++
	}
	for _, host := range []string{"multi.example.com", "nobody.example.com", "pending.example.com"} {
		check("alice's token, Host "+host, request{host: host, header: hdr("Authorization", bearer(aliceToken))})
		sent++
	}
	if got := counterValue(t, r.metrics.requests[ListenerManagement][outcomeUnauthorized]) - before; got != float64(sent) {
		t.Errorf("unauthorized outcomes = %v, want %d (every refused request counted alike)", got, sent)
	}
}

func TestNoIndexYetAnswers503(t *testing.T) {
	r := newTestRouter(t)
	for _, mgmt := range []bool{false, true} {
		rec := r.do(request{host: "alice.example.com", mgmt: mgmt})
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "5" {
			t.Errorf("mgmt=%v: status %d, Retry-After %q; want 503 with Retry-After 5", mgmt, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
}

func TestTokenAppWithoutVerifierAnswers503(t *testing.T) {
	r := world(t) // no TokenVerifier configured
	rec := r.do(request{host: "secure.example.com", header: hdr("Authorization", bearer(coordinatorToken(t, "secure-app")))})
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503 when the router has no public token key", rec.Code)
	}
	if got := counterValue(t, r.metrics.requests[ListenerPublic][outcomeAuthUnavailable]); got != 1 {
		t.Errorf("auth_unavailable count = %v, want 1", got)
	}
}

func TestClientReplayHeadersAreIgnored(t *testing.T) {
	r := world(t)
	plain := r.do(request{host: "alice.example.com"})
	spoofed := r.do(request{host: "alice.example.com", header: hdr(
		"Fly-Replay", "app=evil;instance=00000000000000",
		"Fly-Replay-Src", "instance=x;state=v1.1.x.y",
		// (Fly-Replay-Failed is the documented exception: it gets a 503, see TestPublicAnswers.)
		"Fly-Prefer-Instance-Id", "00000000000000",
		"Fly-Force-Instance-Id", "00000000000000",
		TargetHeader, "multi/m1", // the public listener never reads it
	)})
	// Both answers being the same 404 or 503 would prove nothing: the plain request must replay.
	if plain.Code != ReplayStatus || plain.Header().Get(HeaderReplay) == "" {
		t.Fatalf("plain request: %d %q, want a replay", plain.Code, plain.Header().Get(HeaderReplay))
	}
	if plain.Code != spoofed.Code || plain.Header().Get(HeaderReplay) != spoofed.Header().Get(HeaderReplay) {
		t.Fatalf("client headers changed the answer: %d %q vs %d %q", plain.Code, plain.Header().Get(HeaderReplay),
			spoofed.Code, spoofed.Header().Get(HeaderReplay))
	}
}

func TestAnswersNeverEchoTheRequest(t *testing.T) {
	r := world(t)
	const marker = "zz-echo-marker-zz"
	reqs := []request{
		{host: marker + ".example.com"},
		{host: marker + "<script>"},
		{host: "alice.example.com", header: hdr("Authorization", bearer(marker)), mgmt: true},
		{host: "router", header: hdr(TargetHeader, "alice/"+marker), mgmt: true},
		{host: "router", header: hdr(TargetHeader, marker), mgmt: true},
	}
	for _, req := range reqs {
		rec := r.do(req)
		for name, values := range rec.Header() {
			if strings.Contains(name+strings.Join(values, ","), marker) {
				t.Errorf("host %q: header %s echoes the request", req.host, name)
			}
		}
		if strings.Contains(rec.Body.String(), marker) {
			t.Errorf("host %q: body %q echoes the request", req.host, rec.Body.String())
		}
	}
}

func TestReplayOptionsAndJSONForm(t *testing.T) {
	r := world(t, withForm(FormJSON), withReplayOptions(1500*time.Millisecond, FallbackPreferSelf))
	rec := r.do(request{host: "solo.example.com"})
	if ct := rec.Header().Get("Content-Type"); ct != ReplayJSONMediaType {
		t.Fatalf("Content-Type = %q, want %q", ct, ReplayJSONMediaType)
	}
	if rec.Header().Get(HeaderReplay) != "" {
		t.Error("JSON form also sets the fly-replay header")
	}
	if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(rec.Body.Len()) {
		t.Errorf("Content-Length = %s, body is %d bytes", cl, rec.Body.Len())
	}
	got := replayOf(t, rec)
	if got.Timeout != 1500*time.Millisecond || got.Fallback != "prefer_self" || got.App != "solo-app" || got.Instance != soloID {
		t.Errorf("replay = %+v, want solo-app/%s with timeout 1500ms and fallback prefer_self", got, soloID)
	}

	hr := world(t, withReplayOptions(10*time.Second, FallbackForceSelf)).do(request{host: "solo.example.com"})
	h := hr.Header().Get(HeaderReplay)
	if !strings.HasPrefix(h, "app=solo-app;instance="+soloID+";state=v1.") || !strings.HasSuffix(h, ";timeout=10s;fallback=force_self") {
		t.Errorf("fly-replay = %q, want app;instance;state;timeout=10s;fallback=force_self", h)
	}
}

func TestRequestMetrics(t *testing.T) {
	r := world(t)
	r.do(request{host: "alice.example.com"})
	r.do(request{host: "alice.example.com"})
	r.do(request{host: "nobody.example.com"})
	r.do(request{host: "alice.example.com", mgmt: true})
	checks := []struct {
		l    Listener
		o    outcome
		want float64
	}{
		{ListenerPublic, outcomeReplayed, 2},
		{ListenerPublic, outcomeNotFound, 1},
		{ListenerManagement, outcomeUnauthorized, 1},
		{ListenerManagement, outcomeReplayed, 0},
	}
	for _, c := range checks {
		if got := counterValue(t, r.metrics.requests[c.l][c.o]); got != c.want {
			t.Errorf("%s/%s = %v, want %v", c.l, c.o, got, c.want)
		}
	}
}

// TestRequestSeriesAreTheOutcomes: one series per listener and outcome, none for checkPassed (a
// check letting a request on is not a way of answering it).
func TestRequestSeriesAreTheOutcomes(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range families {
		if f.GetName() != "hangar_router_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["listener"]+"/"+labels["outcome"]] = true
		}
	}
	want := map[string]bool{}
	for l := range listenerCount {
		for o := outcomeReplayed; o < outcomeCount; o++ {
			if o.String() == "" {
				t.Fatalf("outcome %d has no name", o)
			}
			want[l.String()+"/"+o.String()] = true
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("request series %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
}

// TestLookupAndReplayDoNotAllocate pins the hot path: finding the target of a canonical Host (with
// a port, as Fly sends it) and getting its ready-made replay allocate nothing once the bucket's
// signature exists.
func TestLookupAndReplayDoNotAllocate(t *testing.T) {
	r := world(t)
	ix := r.table.Load()
	for _, host := range []string{"alice.example.com", "alice.example.com:443", "multi.example.com.", "alice.apps.example.net"} {
		t.Run(host, func(t *testing.T) {
			warm, _ := resolveHost(ix, host)
			if warm == nil || !warm.ready {
				t.Fatalf("%s does not resolve to a ready target", host)
			}
			warm.replay.values(testNow)
			var sink *replayValues
			allocs := testing.AllocsPerRun(1000, func() {
				tgt, _ := resolveHost(r.table.Load(), host)
				sink = tgt.replay.values(testNow)
			})
			if allocs != 0 {
				t.Fatalf("lookup + replay value: %v allocations, want 0", allocs)
			}
			if sink == nil || len(sink.header) != 1 {
				t.Fatal("no replay value")
			}
		})
	}
}

// TestHandlerReplayDoesNotAllocate extends the pin to the whole handler for a header-form replay
// (with a ResponseWriter whose header map is reused, as net/http's is per request).
func TestHandlerReplayDoesNotAllocate(t *testing.T) {
	r := world(t)
	req, _ := http.NewRequest(http.MethodGet, "http://alice.example.com/", nil)
	w := &reusableWriter{h: http.Header{}}
	r.public.ServeHTTP(w, req)
	allocs := testing.AllocsPerRun(1000, func() {
		w.reset()
		r.public.ServeHTTP(w, req)
	})
	if w.code != ReplayStatus {
		t.Fatalf("status %d, want a replay", w.code)
	}
	if allocs != 0 {
		t.Fatalf("handler: %v allocations per replay, want 0", allocs)
	}
}

// reusableWriter is a minimal ResponseWriter for allocation counts and benchmarks.
type reusableWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *reusableWriter) Header() http.Header  { return w.h }
func (w *reusableWriter) WriteHeader(code int) { w.code = code }
func (w *reusableWriter) Write(b []byte) (int, error) {
	w.n += len(b)
	return len(b), nil
}
func (w *reusableWriter) reset() {
	clear(w.h)
	w.code, w.n = 0, 0
}

// TestDecoyTokenIsShapedLikeAManagementToken: the decoy a management request without a target is
// compared with has the length of a real token (so the compare does the same work) and is random.
func TestDecoyTokenIsShapedLikeAManagementToken(t *testing.T) {
	real := testRoot(t).ManagementToken(keys.App{FlyApp: "alice-app", Generation: 1})
	a, b := newDecoyToken(), newDecoyToken()
	if len(a) != len(real) || len(b) != len(real) {
		t.Errorf("decoy lengths %d and %d, want %d like a management token", len(a), len(b), len(real))
	}
	if string(a) == string(b) {
		t.Error("two decoys are equal: want random ones")
	}
	if _, ok := bearerToken("Bearer " + string(a)); !ok {
		t.Errorf("decoy %q is not a bearer token", a)
	}
}
