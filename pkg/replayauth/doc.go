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
//  1. Take the `state=` field of `fly-replay-src` (fields are separated by `;`) and split it on `.`
//     into exactly four parts; the first must be `v1`.
//  2. Recompute HMAC-SHA256 over "v1|<FLY_APP_NAME>|<machine part>|<expiry part>" with the
//     hex-decoded HANGAR_REPLAY_KEY, keep its first 16 bytes, and compare them with the base64url
//     decoded mac part in constant time (hmac.compare_digest, crypto.timingSafeEqual, ...).
//  3. Refuse the request when now >= expiry, or when the machine part is neither empty nor equal to
//     FLY_MACHINE_ID.
//
// In Go, Verify does all of this and Middleware wraps an http.Handler with it (401 on failure).
// A token is valid until it expires, so it is short-lived: the router signs tokens for about a
// minute, which also bounds how long a copied `fly-replay-src` can be reused.
package replayauth
