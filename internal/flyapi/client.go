package flyapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/wait"
)

// DefaultBaseURL is Fly's public Machines API endpoint.
const DefaultBaseURL = "https://api.machines.dev"

// Options configure a Client. Only Token is required.
type Options struct {
	// BaseURL is the API root without /v1; default DefaultBaseURL. Inside Fly's network
	// http://_api.internal:4280 also works.
	BaseURL string
	// Token supplies the API token on every request (see StaticToken, FileToken, TokenFunc).
	Token TokenSource
	// HTTPClient sends the requests. The default follows no redirects (a redirected POST could be
	// replayed) and has no overall timeout (see AttemptTimeout).
	HTTPClient *http.Client
	// UserAgent is sent with every request; default "hangar-flyapi".
	UserAgent string
	// Limiter is the client-side rate limiter; nil means a new one with DefaultLimits. Share one
	// Limiter between clients of the same org.
	Limiter *Limiter
	// MaxLimiterWait is the longest a call waits on the limiter before it is sent. A call that
	// would wait longer fails at once with an error for which IsRateLimited is true (Code
	// CodeClientThrottled, RetryAfter = the wait), so a controller worker is never parked; the
	// caller requeues after RetryAfter. 0 means 2 s; a negative value means never wait.
	MaxLimiterWait time.Duration
	// Retry bounds the retries of calls that are safe to repeat.
	Retry RetryOptions
	// AttemptTimeout bounds each HTTP request (a wait gets its own timeout on top); 0 means 30 s.
	AttemptTimeout time.Duration
	// CreateAppWait bounds how long CreateApp waits for a new app to become readable: Fly creates
	// apps asynchronously (§11). 0 means 1 minute, like Fly's own client; a negative value makes
	// CreateApp return as soon as Fly accepted the create, without reading the app.
	CreateAppWait time.Duration
	// Metrics registers the client's collectors; nil means no metrics.
	Metrics prometheus.Registerer
	// Now and Sleep replace the clock for tests (limiter buckets, Retry-After dates, waits
	// between attempts). Sleep must return ctx.Err() when ctx ends first.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// RetryOptions bound the retries of calls that are safe to repeat (see the package comment for
// which calls those are).
type RetryOptions struct {
	// MaxAttempts is the number of requests a call may send, the first included; 0 means 4, 1
	// turns retries off.
	MaxAttempts int
	// Backoff spaces the attempts (jittered exponential); a zero value means 250 ms doubling to
	// at most 4 s with 50% jitter. A Retry-After longer than the backoff step wins.
	Backoff wait.Backoff
	// Budget is the most a call sleeps between attempts in total; a retry that would overrun it
	// (for example a long Retry-After) is not made and the last error is returned. 0 means 15 s.
	Budget time.Duration
}

// Client calls the Fly Machines API. It is safe for concurrent use.
type Client struct {
	baseURL        string
	token          TokenSource
	http           *http.Client
	userAgent      string
	limiter        *Limiter
	maxLimiterWait time.Duration
	retry          RetryOptions
	attemptTimeout time.Duration
	createAppWait  time.Duration
	metrics        *metrics
	now            func() time.Time
	sleep          func(ctx context.Context, d time.Duration) error
}

// ErrNoTokenSource is returned by New when Options.Token is nil.
var ErrNoTokenSource = errors.New("flyapi: Options.Token is required")

// New returns a Client.
func New(opts Options) (*Client, error) {
	if opts.Token == nil {
		return nil, ErrNoTokenSource
	}
	c := &Client{
		baseURL:        strings.TrimRight(opts.BaseURL, "/"),
		token:          opts.Token,
		http:           opts.HTTPClient,
		userAgent:      opts.UserAgent,
		limiter:        opts.Limiter,
		maxLimiterWait: opts.MaxLimiterWait,
		retry:          opts.Retry,
		attemptTimeout: opts.AttemptTimeout,
		createAppWait:  opts.CreateAppWait,
		now:            opts.Now,
		sleep:          opts.Sleep,
	}
	if c.baseURL == "" {
		c.baseURL = DefaultBaseURL
	}
	if c.http == nil {
		c.http = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.userAgent == "" {
		c.userAgent = "hangar-flyapi"
	}
	if c.limiter == nil {
		c.limiter = NewLimiter(DefaultLimits())
	}
	switch {
	case c.maxLimiterWait == 0:
		c.maxLimiterWait = 2 * time.Second
	case c.maxLimiterWait < 0:
		c.maxLimiterWait = 0
	}
	if c.retry.MaxAttempts <= 0 {
		c.retry.MaxAttempts = 4
	}
	if c.retry.Backoff == (wait.Backoff{}) {
		c.retry.Backoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.5, Steps: 10, Cap: 4 * time.Second}
	}
	if c.retry.Budget <= 0 {
		c.retry.Budget = 15 * time.Second
	}
	if c.attemptTimeout <= 0 {
		c.attemptTimeout = 30 * time.Second
	}
	if c.createAppWait == 0 {
		c.createAppWait = time.Minute
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.sleep == nil {
		c.sleep = sleepContext
	}
	m, err := newMetrics(opts.Metrics)
	if err != nil {
		return nil, err
	}
	c.metrics = m
	return c, nil
}

func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
