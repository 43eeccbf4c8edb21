package flysim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"
)

// updateMachine replaces the whole config (§4.4): no merge, a new version every time, the old one
// reading `replaced`.
func (s *Server) updateMachine(req *request) reply {
	var body createMachineRequest
	if err := req.decodeBody(&body, false); err != nil {
		return errReply(err)
	}
	cfgJSON, err := parseConfig(body.Config, s.profile.TypedConfig)
	if err != nil {
		return errReply(err)
	}
	if body.LeaseTTL < 0 {
		return errorf(http.StatusBadRequest, "invalid_argument: lease_ttl must not be negative")
	}
	return s.machineAction(req, true, func(m *machine) reply {
		// name and region are immutable (D); sending the current value is fine.
		if body.Name != "" && body.Name != m.name {
			return errorf(http.StatusUnprocessableEntity, "invalid_argument: name cannot be changed by update")
		}
		if body.Region != "" && body.Region != m.region {
			return errorf(http.StatusUnprocessableEntity, "invalid_argument: region cannot be changed by update")
		}
		if body.CurrentVersion != "" && body.CurrentVersion != m.current().id {
			return errorf(http.StatusConflict, "conflict: machine version %s is not the current version %s", body.CurrentVersion, m.current().id)
		}
		if err := s.replaceConfig(m, cfgJSON, body.SkipLaunch, body.SkipSecrets, body.MinSecretsVersion); err != nil {
			return errReply(err)
		}
		if body.SkipServiceRegistration {
			m.cordoned = true
		}
		view := s.viewMachine(m, m.current(), viewOptions{})
		if body.LeaseTTL > 0 && s.activeLease(m) == nil {
			view.Nonce = s.newLease(m, req.owner, "", time.Duration(body.LeaseTTL)*time.Second).nonce
		}
		return jsonReply(http.StatusOK, view)
	})
}

// replaceConfig makes cfg m's new current version and runs the swap. Shared by the update endpoint
// and UpdateOutOfBand. Callers hold s.mu.
func (s *Server) replaceConfig(m *machine, cfg json.RawMessage, skipLaunch, skipSecrets bool, minSecrets *uint64) *apiError {
	if err := notDestroyed(m, "update"); err != nil {
		return err
	}
	if !sameMounts(m.current().config, cfg) {
		return newAPIError(http.StatusUnprocessableEntity, "invalid_argument: config.mounts: mounts cannot be changed by update")
	}
	if err := checkMinSecretsVersion(m.app, minSecrets); err != nil {
		return err
	}
	secretValues, secretsVersion := s.bootSecrets(m.app, skipSecrets, minSecrets)
	now := s.now()
	prior := m.state
	if prior == StateReplacing {
		prior = m.updateTarget // an update during the swap: judge by where the first one was going
	}
	m.versions = append(m.versions, &machineVersion{
		id: s.ids.ulid(now), config: cfg, createdAt: now,
		secretsVersion: secretsVersion, skipSecrets: skipSecrets,
		secretValues: secretValues,
	})
	s.replace(m, afterUpdate(prior, skipLaunch))
	return nil
}

// sameMounts compares config.mounts of two stored configs (both encoded by marshalJSON, so equal
// mounts encode equally).
func sameMounts(a, b json.RawMessage) bool {
	var x, y struct {
		Mounts json.RawMessage `json:"mounts"`
	}
	_ = json.Unmarshal(a, &x)
	_ = json.Unmarshal(b, &y)
	norm := func(r json.RawMessage) []byte {
		if len(r) == 0 || string(r) == "null" || string(r) == "[]" {
			return nil
		}
		return r
	}
	return bytes.Equal(norm(x.Mounts), norm(y.Mounts))
}
