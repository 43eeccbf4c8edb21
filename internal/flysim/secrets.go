package flysim

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"regexp"
	"slices"
	"strconv"
)

// secretNameRE: secrets become environment variables, so names follow env var rules.
var secretNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// digest identifies a secret's value without revealing it: a truncated SHA-256 of the value.
func digest(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:8])
}

// secretView is AppSecret (§3). value only appears with show_secrets.
type secretView struct {
	Name      string  `json:"name"`
	Digest    string  `json:"digest"`
	Value     *string `json:"value,omitempty"`
	CreatedAt string  `json:"created_at"`
	UpdatedAt string  `json:"updated_at"`
}

func viewSecret(sec *secret, show bool) secretView {
	v := secretView{Name: sec.name, Digest: digest(sec.value), CreatedAt: rfc3339(sec.createdAt), UpdatedAt: rfc3339(sec.updatedAt)}
	if show {
		value := sec.value
		v.Value = &value
	}
	return v
}

func sortedSecrets(a *app, show bool) []secretView {
	names := make([]string, 0, len(a.secrets))
	for name := range a.secrets {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]secretView, 0, len(names))
	for _, name := range names {
		out = append(out, viewSecret(a.secrets[name], show))
	}
	return out
}

// secretsReadOptions parses show_secrets and the minimum-version filter, which S calls min_version and
// fly-go sends as version (§10); both are accepted.
func (req *request) secretsReadOptions() (show bool, minVersion *uint64, err *apiError) {
	if show, err = req.boolQuery("show_secrets"); err != nil {
		return false, nil, err
	}
	q := req.r.URL.Query()
	for _, key := range []string{"min_version", "version"} {
		if v := q.Get(key); v != "" {
			n, perr := strconv.ParseUint(v, 10, 64)
			if perr != nil {
				return false, nil, newAPIError(http.StatusBadRequest, "invalid_argument: %s must be a non-negative integer", key)
			}
			if minVersion == nil || n > *minVersion {
				minVersion = &n
			}
		}
	}
	return show, minVersion, nil
}

// checkSecretsVersion: the version filter asks to read secrets at least that new. The emulator's
// writes are visible at once, so a version above the app's is one that does not exist yet: a 412, like
// min_secrets_version on machine create.
func checkSecretsVersion(a *app, minVersion *uint64) *apiError {
	if minVersion != nil && *minVersion > a.secretsVer {
		return newAPIError(http.StatusPreconditionFailed,
			"failed_precondition: app secrets are at version %d, older than the requested version %d", a.secretsVer, *minVersion)
	}
	return nil
}

func (s *Server) listSecrets(req *request) reply {
	show, minVersion, err := req.secretsReadOptions()
	if err != nil {
		return errReply(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appFor(req)
	if err != nil {
		return errReply(err)
	}
	if err := checkSecretsVersion(a, minVersion); err != nil {
		return errReply(err)
	}
	return jsonReply(http.StatusOK, map[string]any{"secrets": sortedSecrets(a, show)})
}

// setSecrets sets and unsets (null) several secrets at once. Every accepted request is one new app
// secrets version.
func (s *Server) setSecrets(req *request) reply {
	var body struct {
		Values map[string]*string `json:"values"`
	}
	if err := req.decodeBody(&body, false); err != nil {
		return errReply(err)
	}
	if len(body.Values) == 0 {
		return errorf(http.StatusBadRequest, "invalid_argument: values must name at least one secret")
	}
	for name := range body.Values {
		if !secretNameRE.MatchString(name) {
			return errorf(http.StatusBadRequest, "invalid_argument: secret name %q must be letters, digits and underscores", name)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appFor(req)
	if err != nil {
		return errReply(err)
	}
	a.secretsVer++
	for name, value := range body.Values {
		if value == nil {
			delete(a.secrets, name)
			continue
		}
		s.putSecret(a, name, *value)
	}
	return jsonReply(http.StatusOK, map[string]any{"secrets": sortedSecrets(a, false), "version": a.secretsVer})
}

// putSecret writes one secret at the app's current secrets version. Callers hold s.mu.
func (s *Server) putSecret(a *app, name, value string) *secret {
	now := s.now()
	sec := a.secrets[name]
	if sec == nil {
		sec = &secret{name: name, createdAt: now}
		a.secrets[name] = sec
	}
	sec.value, sec.updatedAt, sec.version = value, now, a.secretsVer
	return sec
}

func (s *Server) getSecret(req *request) reply {
	name := req.r.PathValue("name")
	show, minVersion, err := req.secretsReadOptions()
	if err != nil {
		return errReply(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appFor(req)
	if err != nil {
		return errReply(err)
	}
	if err := checkSecretsVersion(a, minVersion); err != nil {
		return errReply(err)
	}
	sec := a.secrets[name]
	if sec == nil {
		return errorf(http.StatusNotFound, "secret not found")
	}
	return jsonReply(http.StatusOK, viewSecret(sec, show))
}

func (s *Server) setSecret(req *request) reply {
	name := req.r.PathValue("name")
	if !secretNameRE.MatchString(name) {
		return errorf(http.StatusBadRequest, "invalid_argument: secret name must be letters, digits and underscores")
	}
	var body struct {
		Value *string `json:"value"`
	}
	if err := req.decodeBody(&body, false); err != nil {
		return errReply(err)
	}
	if body.Value == nil {
		return errorf(http.StatusBadRequest, "invalid_argument: value is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appFor(req)
	if err != nil {
		return errReply(err)
	}
	a.secretsVer++
	sec := s.putSecret(a, name, *body.Value)
	type setSecretResponse struct {
		secretView
		Version uint64 `json:"version"`
	}
	return jsonReply(http.StatusCreated, setSecretResponse{secretView: viewSecret(sec, false), Version: a.secretsVer})
}

func (s *Server) deleteSecret(req *request) reply {
	name := req.r.PathValue("name")
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appFor(req)
	if err != nil {
		return errReply(err)
	}
	if a.secrets[name] == nil {
		return errorf(http.StatusNotFound, "secret not found")
	}
	delete(a.secrets, name)
	a.secretsVer++
	return jsonReply(http.StatusOK, map[string]uint64{"version": a.secretsVer})
}

// secretSnapshot copies a's current secret values for a new machine version; a version created with
// skip_secrets sees none. Callers hold s.mu.
func secretSnapshot(a *app, skip bool) map[string]string {
	if skip {
		return nil
	}
	values := make(map[string]string, len(a.secrets))
	for name, sec := range a.secrets {
		values[name] = sec.value
	}
	return values
}
