package flysim

import (
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/funcr"
)

func TestLoggerGetsOneLinePerCallAndNoTokens(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	logger := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, args)
	}, funcr.Options{Verbosity: 1})
	h := newHarness(t, func(o *Options) { o.Logger = logger })
	h.CreateApp("logme")
	h.Do("POST", "/v1/apps/logme/secrets", map[string]any{"values": map[string]any{"K": "secret-value"}}).Expect(t, 200, nil)
	h.As("").Do("GET", "/v1/apps/logme", nil, "Authorization", "Bearer wrong-token").Expect(t, 401, nil)

	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want one per call: %v", len(lines), lines)
	}
	for _, l := range lines {
		for _, secret := range []string{tokenA, "wrong-token", "secret-value"} {
			if strings.Contains(l, secret) {
				t.Errorf("log line leaks %q: %s", secret, l)
			}
		}
	}
	if !strings.Contains(lines[1], `"action"="set_secrets"`) || !strings.Contains(lines[2], `"status"=401`) {
		t.Errorf("log lines %v", lines)
	}
}
