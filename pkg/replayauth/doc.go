// Package replayauth signs and verifies the `state` that hangar's router puts in a fly-replay, so a
// user machine can tell a request the router let through from one that reached it some other way;
// it deliberately knows nothing of Kubernetes, routing or key derivation (the key arrives as input).
//
// # Token
//
// The router answers `fly-replay: app=<app>;instance=<machine>;state=<token>`, and the Fly Proxy
// hands the token to the target in `fly-replay-src: instance=..;region=..;t=..;state=<token>`.
// The token is
//
//	v1.<expiry>.<machine>.<mac>
//
// where expiry is the Unix time in seconds after which the token is refused, machine is the Fly
// machine ID the token is bound to (empty: any machine of the app), and mac is the first 16 bytes
// of HMAC-SHA256(key, "v1|" + app + "|" + machine + "|" + expiry), in unpadded base64url (RFC 4648
// §5). The key is the app's replay key: 32 bytes, given to every machine of the app as the Fly secret
// HANGAR_REPLAY_KEY in lower-case hex. The token holds no `;`, `,`, `=`, quotes or spaces, so it
// needs no quoting in a header.
//
// # Verifying in another language
//
//  1. Refuse the request unless it carries exactly one `fly-replay-src` header. Split its value
//     into fields on `;` (and `,`); refuse it when any of the fields instance, region, t or state
//     appears twice (two values folded into one). Take the `state=` field and split it on `.`
//     into exactly four parts; the first must be `v1`.
//  2. Recompute HMAC-SHA256 over "v1|<FLY_APP_NAME>|<machine part>|<expiry part>" with the
//     hex-decoded HANGAR_REPLAY_KEY, keep its first 16 bytes, and compare them with the base64url
//     decoded mac part in constant time (hmac.compare_digest, crypto.timingSafeEqual, ...).
//  3. With now in Unix seconds, refuse the request when now >= expiry, when expiry > now + 630
//     (DefaultMaxLifetime 600 s + DefaultSkew 30 s: no state of hangar's router lives longer, so
//     such a state means the clocks disagree), or when the machine part is neither empty nor equal
//     to FLY_MACHINE_ID. The second rule bounds the time a state is accepted to 630 s of the
//     machine's clock, however far behind that clock is.
//
// In Go, Config.Verify does all of this and Middleware wraps an http.Handler with it (401 with the
// same fixed body for every failure; Config.OnReject is told which). Verify and VerifyState do
// steps 1 (for one header value) to 3. A token is valid until it expires, so it is short-lived: the
// router signs tokens for about a minute by default (--state-ttl, at most 8 minutes, a token
// living at most 1.25 times that), which also bounds how long a copied `fly-replay-src` can be
// reused.
package replayauth
