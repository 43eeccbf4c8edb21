package flysim

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Typed accessors: absent (or null) fields report present=false; a wrong type is a 400.

func optString(obj map[string]any, key, field string) (string, bool, *apiError) {
	switch v := obj[key].(type) {
	case nil:
		return "", false, nil
	case string:
		return v, true, nil
	default:
		return "", false, configTypeError(field, "string")
	}
}

// optBool accepts an absent or boolean field. Like optDuration it only validates: where a value
// matters (autostart), it is read from the stored config (proxy_services.go).
func optBool(obj map[string]any, key, field string) *apiError {
	switch obj[key].(type) {
	case nil, bool:
		return nil
	default:
		return configTypeError(field, "boolean")
	}
}

func optInt(obj map[string]any, key, field string) (int64, bool, *apiError) {
	switch v := obj[key].(type) {
	case nil:
		return 0, false, nil
	case json.Number:
		n, err := v.Int64()
		if err != nil {
			return 0, false, configTypeError(field, "integer")
		}
		return n, true, nil
	default:
		return 0, false, configTypeError(field, "integer")
	}
}

func optObject(obj map[string]any, key, field string) (map[string]any, bool, *apiError) {
	switch v := obj[key].(type) {
	case nil:
		return nil, false, nil
	case map[string]any:
		return v, true, nil
	default:
		return nil, false, configTypeError(field, "object")
	}
}

func optArray(obj map[string]any, key, field string) ([]any, bool, *apiError) {
	switch v := obj[key].(type) {
	case nil:
		return nil, false, nil
	case []any:
		return v, true, nil
	default:
		return nil, false, configTypeError(field, "array")
	}
}

func stringList(obj map[string]any, key, field string) *apiError {
	list, _, err := optArray(obj, key, field)
	if err != nil {
		return err
	}
	for i, v := range list {
		if _, ok := v.(string); !ok {
			return configTypeError(fmt.Sprintf("%s[%d]", field, i), "string")
		}
	}
	return nil
}

func stringMap(obj map[string]any, key, field string) *apiError {
	m, _, err := optObject(obj, key, field)
	if err != nil {
		return err
	}
	for k, v := range m {
		if _, ok := v.(string); !ok {
			return configTypeError(field+"."+k, "string")
		}
	}
	return nil
}

// optDuration accepts a Go duration string ("15s") or a number of nanoseconds (§6 "Durations").
func optDuration(obj map[string]any, key, field string) *apiError {
	switch v := obj[key].(type) {
	case nil:
		return nil
	case string:
		d, err := time.ParseDuration(v)
		if err != nil {
			return configInvalid(field, "%q is not a duration", v)
		}
		if d < 0 {
			return configInvalid(field, "must not be negative")
		}
		return nil
	case json.Number:
		n, err := v.Int64()
		if err != nil {
			return configTypeError(field, "duration string or integer nanoseconds")
		}
		if n < 0 {
			return configInvalid(field, "must not be negative")
		}
		return nil
	default:
		return configTypeError(field, "duration string or integer nanoseconds")
	}
}

// checkDurationJSON validates a standalone duration value (stop's timeout).
func checkDurationJSON(raw json.RawMessage, field string) *apiError {
	var v any
	if err := decodeJSON(raw, &v); err != nil {
		return err
	}
	if err := optDuration(map[string]any{"v": v}, "v", field); err != nil {
		err.message = strings.Replace(err.message, "config."+field, field, 1)
		return err
	}
	return nil
}

// configMetadata reads config.metadata of a stored (validated) config.
func configMetadata(raw json.RawMessage) map[string]string {
	var cfg struct {
		Metadata map[string]string `json:"metadata"`
	}
	_ = json.Unmarshal(raw, &cfg) // stored configs were validated: metadata is a string map or absent
	if cfg.Metadata == nil {
		return map[string]string{}
	}
	return cfg.Metadata
}

// configImage reads config.image of a stored (validated) config.
func configImage(raw json.RawMessage) string {
	var cfg struct {
		Image string `json:"image"`
	}
	_ = json.Unmarshal(raw, &cfg)
	return cfg.Image
}
