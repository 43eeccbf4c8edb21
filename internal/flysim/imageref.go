package flysim

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// imageRefRE is the container image reference grammar: [domain[:port]/]path[:tag][@digest], with
// lowercase path components (the distribution/reference rules).
var imageRefRE = func() *regexp.Regexp {
	const (
		alnum     = `[a-z0-9]+`
		separator = `(?:[._]|__|-+)`
		component = alnum + `(?:` + separator + alnum + `)*`
		domainCmp = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
		domain    = domainCmp + `(?:\.` + domainCmp + `)*(?::[0-9]+)?`
		tag       = `[\w][\w.-]{0,127}`
		digest    = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
	)
	return regexp.MustCompile(`^(?:` + domain + `/)?` + component + `(?:/` + component + `)*(?::` + tag + `)?(?:@` + digest + `)?$`)
}()

// validImageRef reports whether ref is a well-formed image reference (at most 255 characters of name).
func validImageRef(ref string) bool {
	name, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return len(name) <= 255 && imageRefRE.MatchString(ref)
}

// imageRef is the machine's `image_ref` (§4.1).
type imageRef struct {
	Registry   string            `json:"registry"`
	Repository string            `json:"repository"`
	Tag        string            `json:"tag"`
	Digest     string            `json:"digest"`
	Labels     map[string]string `json:"labels"`
}

// dockerHubRegistry is where Fly resolves images that name no registry.
const dockerHubRegistry = "registry-1.docker.io"

// parseImageRef splits a valid reference into image_ref's parts. Without a digest in the reference, the
// digest is derived from the reference itself: stable, and distinct for distinct images.
func parseImageRef(ref string) imageRef {
	rest, digest, _ := strings.Cut(ref, "@")
	tag := ""
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		rest, tag = rest[:i], rest[i+1:]
	}
	registry, repository := dockerHubRegistry, rest
	if first, remainder, ok := strings.Cut(rest, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		registry, repository = first, remainder
	} else if !strings.Contains(rest, "/") {
		repository = "library/" + rest
	}
	if tag == "" && digest == "" {
		tag = "latest"
	}
	if digest == "" {
		sum := sha256.Sum256([]byte(ref))
		digest = "sha256:" + hex.EncodeToString(sum[:])
	}
	return imageRef{Registry: registry, Repository: repository, Tag: tag, Digest: digest, Labels: map[string]string{}}
}
