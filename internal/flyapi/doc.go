// Package flyapi is hangar's client for the Fly.io Machines API: typed calls, typed errors,
// client-side rate limits and side-effect-safe retries; it deliberately holds no state about Fly
// resources (no caches, no reconciliation) and never resends a call that could duplicate an effect.
//
// Section marks (§N) refer to docs/fly-api.md.
//
// # Calls and retries
//
// Every method takes a context first and returns domain types (App, Machine, Lease, ...). A call is
// resent only when repeating it cannot duplicate a side effect:
//
//   - reads (get, list, wait, lease get, metadata get) are retried after a 5xx answer or a broken
//     connection;
//   - lease release and machine destroy are retried the same way, because repeating them converges
//     on the same end state;
//   - any call answered 429 is retried when its Retry-After fits the retry budget, because Fly
//     refuses a rate-limited call before doing anything;
//   - any call whose connection could not even be opened (dial or DNS failure) is retried, because
//     nothing reached Fly.
//
// Creates, updates and every other mutation are never resent after a 5xx, a 408, a timeout or a
// dropped connection: Fly may have committed them (a 503 can follow a committed create, and a
// create or launch can answer 408 from flyd after committing the machine, §11), so the error goes
// back to the caller, who looks the resource up (by name or metadata) before trying again. net/http
// keeps to this too: it resends a request on a fresh connection only when nothing of it was written,
// or for GET.
//
// # Three kinds of failure
//
// A failed call with side effects either definitely failed (Fly refused it with a 4xx: 400, 401,
// 403, 404, 409, 412, 422, 429, or the client's limiter refused it), or its outcome is unknown
// (IsOutcomeUnknown: a 408, a 5xx, a lost answer, a caller that gave up while the request was out,
// or a 2xx whose body cannot be read). A machine wait answered 408 is neither: its own timeout passed
// (IsWaitTimeout), and waiting again is safe.
//
// # Answers
//
// A 2xx answer is decoded and checked for what the call must return (a machine's ID, a lease's
// nonce, an address); one that cannot be used (an HTML page, JSON cut short or of the wrong shape,
// an empty body) is a BadResponseError with the status and the start of the body, never a panic or
// a zero value. Errors keep at most a few hundred bytes of what Fly sent.
//
// # Lists
//
// Fly's list page size is advisory (§11): a page may be shorter than asked, or empty, while the
// cursor says more remain. ListMachines and ListApps follow the cursor until there is none, never
// stop on a page's length, return an item listed twice once, and fail with ErrPaging instead of
// looping when a cursor comes back a second time.
//
// # Rate limits
//
// A Limiter mirrors Fly's published limits (one token bucket per action and machine, app or org;
// by default running 10% below the published rates, see DefaultLimits).
// A call that would wait longer than Options.MaxLimiterWait does not block: it fails at once with an
// error for which IsRateLimited is true and RateLimitedAfter reports how long to wait, so a
// controller worker is never parked. WithCallStats lets a caller see whether a call waited on the
// limiter or met a 429 (e.g. to set a Throttled condition reason).
//
// # Tokens
//
// A TokenSource is asked for the token on every request, so a rotated token (FileToken re-reads its
// file when it changes) is used without a restart. The token never appears in an error, a metric
// label or anything this package formats: any piece of it that Fly echoes back (whole, cut short, or
// with its case changed) is redacted from errors.
//
// # Config fidelity
//
// Fly replaces a machine's whole config on update, so a field this package does not model would be
// wiped by a read-modify-write. Every config type therefore keeps the JSON keys it does not know and
// writes them back unchanged. That is also why only the parts hangar reads or sets are modelled
// (image, env, guest, metadata, services, checks, restart, stop_config and a few scalars): the rest
// of the config (mounts, processes, files, dns, init, containers, ...) travels as raw JSON, exactly as
// Fly sent it.
package flyapi
