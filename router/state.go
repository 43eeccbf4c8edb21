package router

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hangar-dev/hangar/pkg/replayauth"
)

// DefaultStateTTL is how long a replay state stays valid at least.
const DefaultStateTTL = time.Minute

// MaxStateTTL is the largest state TTL the router accepts. A state lives at most TTL + TTL/4, so
// with this bound no state outlives replayauth.DefaultMaxLifetime, the furthest ahead a user
// machine accepts an expiry by default.
const MaxStateTTL = replayauth.DefaultMaxLifetime * stateBucketsPerTTL / (stateBucketsPerTTL + 1)

// stateBucketsPerTTL splits the TTL into buckets: one signature serves a whole bucket, so a state
// is valid for between TTL and TTL + TTL/4 after it is handed out.
const stateBucketsPerTTL = 4

// stateClock turns a time into a signing bucket and the expiry of the tokens of that bucket.
type stateClock struct {
	ttl    time.Duration
	bucket time.Duration
}

func newStateClock(ttl time.Duration) stateClock {
	if ttl <= 0 {
		ttl = DefaultStateTTL
	}
	// New refuses a larger TTL; a Builder made directly still never signs states machines refuse.
	ttl = min(ttl, MaxStateTTL)
	return stateClock{ttl: ttl, bucket: max(ttl/stateBucketsPerTTL, time.Second)}
}

func (c stateClock) bucketOf(now time.Time) int64 { return now.UnixNano() / int64(c.bucket) }

func (c stateClock) expiryOf(bucket int64) time.Time {
	return time.Unix(0, (bucket+1)*int64(c.bucket)).Add(c.ttl)
}

// replayValues are the ready-made responses of one target for one bucket. They are immutable once
// published and shared by every request of the bucket, so the request path copies nothing.
type replayValues struct {
	bucket int64
	// header is the fly-replay header value as net/http stores it.
	header []string
	// json and jsonLength are the JSON form (made only when it is the configured form);
	// jsonDeleteAuth also deletes the Authorization header (made only for Token apps).
	json                 []byte
	jsonLength           []string
	jsonDeleteAuth       []byte
	jsonDeleteAuthLength []string
}

// replaySource signs and caches the replay values of one (Fly app, machine) pair. It lives across
// index rebuilds while the pair stays routable, so a rebuild does not throw the signatures away.
type replaySource struct {
	app        string
	machine    string // empty: any machine of the app
	deleteAuth bool   // the app uses Token auth: also make the form that deletes Authorization
	key        []byte // the app's replay key
	cfg        *sourceConfig
	current    atomic.Pointer[replayValues]
}

// values returns the replay values for now. Within a bucket this is one atomic load and an integer
// compare: no hashing and no allocation. The first request of a new bucket signs (twice at most
// when two requests race, both results valid).
func (s *replaySource) values(now time.Time) *replayValues {
	bucket := s.cfg.clock.bucketOf(now)
	if v := s.current.Load(); v != nil && v.bucket == bucket {
		return v
	}
	v := s.sign(bucket)
	s.current.Store(v)
	return v
}

func (s *replaySource) sign(bucket int64) *replayValues {
	state := replayauth.Sign(s.key, s.app, s.machine, s.cfg.clock.expiryOf(bucket))
	r := replayFor(s.app, s.machine, state, s.cfg.opts)
	v := &replayValues{bucket: bucket, header: []string{r.HeaderValue()}}
	if s.cfg.opts.Form == FormJSON {
		v.json = r.JSON()
		v.jsonLength = []string{strconv.Itoa(len(v.json))}
	}
	if s.deleteAuth {
		r.DeleteHeaders = []string{headerAuthorization}
		v.jsonDeleteAuth = r.JSON()
		v.jsonDeleteAuthLength = []string{strconv.Itoa(len(v.jsonDeleteAuth))}
	}
	return v
}
