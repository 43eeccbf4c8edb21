package flyapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// TokenSource supplies the Fly API token. It is asked on every request, so a source whose answer
// changes (a rotated file, a secret store) takes effect without a restart. Implementations must be
// safe for concurrent use and must not put the token in the errors they return.
type TokenSource interface {
	Token() (string, error)
}

// ErrNoToken is returned when a token source yields an empty token.
var ErrNoToken = errors.New("flyapi: the token source returned an empty token")

// errMalformedToken is returned for tokens that cannot go in a header; it never quotes the token.
var errMalformedToken = errors.New("flyapi: the token contains characters that cannot be sent in a header")

// errMixedToken is returned when a comma-separated token mixes macaroons with another kind.
var errMixedToken = errors.New("flyapi: the token mixes Fly macaroons with another kind of token")

// StaticToken returns a source that always yields token.
func StaticToken(token string) TokenSource { return staticToken(token) }

type staticToken string

func (t staticToken) Token() (string, error) { return string(t), nil }

// TokenFunc adapts a function to TokenSource.
type TokenFunc func() (string, error)

// Token calls f.
func (f TokenFunc) Token() (string, error) { return f() }

// FileToken returns a source that reads the token from path, trimming surrounding whitespace, and
// reads it again whenever the file changes (its identity, size or modification time; a stat per
// request). A Kubernetes Secret volume swaps files on update, so a rotated token is picked up on
// the next request.
func FileToken(path string) TokenSource { return &fileToken{path: path} }

type fileToken struct {
	path string

	mu    sync.Mutex
	stamp fileStamp
	token string
}

func (f *fileToken) Token() (string, error) {
	info, err := os.Stat(f.path)
	if err != nil {
		return "", fmt.Errorf("flyapi: token file: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stamp.matches(info) {
		return f.token, nil
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return "", fmt.Errorf("flyapi: token file: %w", err)
	}
	f.stamp = stampOf(info)
	f.token = string(bytes.TrimSpace(data))
	return f.token, nil
}

// fileStamp is what tells a changed file from the same one without reading it: its identity
// (a Secret volume swaps in a new file), size and modification time.
type fileStamp struct {
	info    os.FileInfo
	modTime time.Time
	size    int64
}

func stampOf(info os.FileInfo) fileStamp {
	return fileStamp{info: info, modTime: info.ModTime(), size: info.Size()}
}

func (s fileStamp) matches(info os.FileInfo) bool {
	return s.info != nil && os.SameFile(s.info, info) && info.ModTime().Equal(s.modTime) && info.Size() == s.size
}

// WatchTokenFile reports on the returned channel each time the file at path changes (looked at
// every interval until ctx ends), so work that stopped because Fly refused the old token can run
// again at once instead of at its next retry. Changes that come faster than they are read collapse
// into one report. A file that is missing for a while (a Secret volume mid-swap) is not a change;
// its return with new contents is.
func WatchTokenFile(ctx context.Context, path string, interval time.Duration) <-chan struct{} {
	changed := make(chan struct{}, 1)
	go func() {
		var last fileStamp
		if info, err := os.Stat(path); err == nil {
			last = stampOf(info)
		}
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			info, err := os.Stat(path)
			if err != nil || last.matches(info) {
				continue
			}
			last = stampOf(info)
			select {
			case changed <- struct{}{}:
			default: // a report is already waiting
			}
		}
	}()
	return changed
}

// macaroonPrefixes are the token kinds (the text before the first "_") that Fly authenticates
// with the FlyV1 scheme; anything else is a user or OAuth token sent as Bearer.
var macaroonPrefixes = []string{"fm1r", "fm1a", "fm2"}

// credential is a token made ready for the Authorization header.
type credential struct {
	header string   // the full header value, e.g. "FlyV1 fm2_..."
	parts  []string // the bare token parts, for redaction
}

// credentialFor turns whatever the source yielded into the header value. Fly's own tools print
// tokens with their scheme ("FlyV1 fm2_…") and users paste them into variables that other tools
// prefix again ("Bearer FlyV1 …"), so any leading Bearer/FlyV1 schemes are stripped
// (case-insensitively, repeatedly) before the scheme is chosen from the token itself. Several
// macaroons may be joined by commas.
func credentialFor(raw string) (credential, error) {
	token := stripSchemes(raw)
	if token == "" {
		return credential{}, ErrNoToken
	}
	var parts []string
	for _, part := range strings.Split(token, ",") {
		if part = strings.TrimSpace(stripSchemes(part)); part != "" {
			parts = append(parts, part)
		}
	}
	if len(parts) == 0 {
		return credential{}, ErrNoToken
	}
	for _, part := range parts {
		for _, r := range part {
			if r <= ' ' || r >= 0x7f {
				return credential{}, errMalformedToken
			}
		}
	}
	macaroons := 0
	for _, part := range parts {
		if isMacaroon(part) {
			macaroons++
		}
	}
	switch {
	case macaroons == len(parts):
		return credential{header: "FlyV1 " + strings.Join(parts, ","), parts: parts}, nil
	case macaroons == 0 && len(parts) == 1:
		return credential{header: "Bearer " + parts[0], parts: parts}, nil
	default:
		// Fly's header carries either macaroons or one bearer token; guessing which part the
		// user meant could send the wrong credential, so refuse.
		return credential{}, errMixedToken
	}
}

func stripSchemes(token string) string {
	token = strings.TrimSpace(token)
	for {
		rest, ok := cutSchemePrefix(token)
		if !ok {
			return token
		}
		token = strings.TrimSpace(rest)
	}
}

func cutSchemePrefix(token string) (string, bool) {
	for _, scheme := range []string{"bearer", "flyv1"} {
		if strings.EqualFold(token, scheme) {
			return "", true // a scheme with nothing after it
		}
		if len(token) > len(scheme) && strings.EqualFold(token[:len(scheme)], scheme) &&
			(token[len(scheme)] == ' ' || token[len(scheme)] == '\t') {
			return token[len(scheme):], true
		}
	}
	return token, false
}

func isMacaroon(token string) bool {
	prefix, _, found := strings.Cut(token, "_")
	if !found {
		return false
	}
	for _, p := range macaroonPrefixes {
		if prefix == p {
			return true
		}
	}
	return false
}
