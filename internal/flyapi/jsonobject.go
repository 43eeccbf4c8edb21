package flyapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// unknownFields holds the JSON members of an object that its Go type does not model, exactly as
// they were received, so that re-encoding the object sends them back. Values are never modified
// after decoding, so copies of a struct may share the map.
type unknownFields map[string]json.RawMessage

// knownFieldsByType caches, per plain struct type, the JSON member name of each exported field.
var knownFieldsByType sync.Map // reflect.Type -> []knownField

type knownField struct {
	name  string
	index []int
}

func knownFieldsOf(t reflect.Type) []knownField {
	if cached, ok := knownFieldsByType.Load(t); ok {
		return cached.([]knownField)
	}
	var fields []knownField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields = append(fields, knownField{name: name, index: f.Index})
	}
	knownFieldsByType.Store(t, fields)
	return fields
}

// decodeObject decodes the JSON object data into *dst (a plain struct type without JSON methods)
// and stores the members that no field of *dst claims in *unknown (which usually lives inside
// *dst). Decoding replaces the whole value, the way Fly replaces a whole config.
//
// Members are matched to fields by their exact name. encoding/json would also match "IMAGE" to
// the field tagged "image"; here such a key is kept as an unknown member instead, so a decode
// followed by an encode never renames or silently merges keys.
func decodeObject[T any](data []byte, dst *T, unknown *unknownFields) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil // like encoding/json: null leaves a struct as it is
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return fmt.Errorf("decoding %T: %w", *dst, err)
	}
	var zero T
	*dst = zero
	target := reflect.ValueOf(dst).Elem()
	for _, field := range knownFieldsOf(target.Type()) {
		raw, ok := members[field.name]
		if !ok {
			continue
		}
		delete(members, field.name)
		if err := json.Unmarshal(raw, target.FieldByIndex(field.index).Addr().Interface()); err != nil {
			return fmt.Errorf("decoding %q: %w", field.name, err)
		}
	}
	if len(members) > 0 {
		*unknown = unknownFields(members)
	}
	return nil
}

// encodeObject encodes v (a plain struct type without JSON methods) and appends the unknown
// members, sorted by key so that equal values always encode to equal bytes (config hashes rely
// on that).
func encodeObject[T any](v T, unknown unknownFields) ([]byte, error) {
	known, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(unknown) == 0 {
		return known, nil
	}
	keys := make([]string, 0, len(unknown))
	for k := range unknown {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	var out bytes.Buffer
	out.Grow(len(known) + 32*len(keys))
	out.Write(known[:len(known)-1]) // drop the closing brace
	needComma := len(known) > 2
	for _, k := range keys {
		if needComma {
			out.WriteByte(',')
		}
		needComma = true
		name, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		out.Write(name)
		out.WriteByte(':')
		out.Write(unknown[k])
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}
