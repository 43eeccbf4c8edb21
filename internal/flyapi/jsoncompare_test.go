package flyapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"time"
)

// This file checks that re-encoding a decoded document lost nothing: every member of the input
// is in the output with the same value, allowing only the rewrites the types document:
//   - a member whose value is null, false, 0 or "" may be dropped (it equals Fly's default);
//   - autostop false/true may come back as "off"/"stop";
//   - a duration given as a number of nanoseconds (or as another spelling such as "1m") may come
//     back as the equal Go duration string.

var durationKeys = map[string]bool{"interval": true, "timeout": true, "grace_period": true}

func decodeGeneric(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// preserved returns "" when out keeps everything of in, else the first difference.
func preserved(in, out any) string {
	return preservedAt("$", "", in, out)
}

func preservedAt(path, key string, in, out any) string {
	switch a := in.(type) {
	case map[string]any:
		b, ok := out.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: object became %T", path, out)
		}
		keys := make([]string, 0, len(a))
		for k := range a {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			bv, present := b[k]
			if !present {
				if isZeroJSON(a[k]) {
					continue
				}
				return fmt.Sprintf("%s.%s: dropped (was %v)", path, k, a[k])
			}
			if diff := preservedAt(path+"."+k, k, a[k], bv); diff != "" {
				return diff
			}
		}
		return ""
	case []any:
		b, ok := out.([]any)
		if !ok || len(a) != len(b) {
			return fmt.Sprintf("%s: array %v became %v", path, a, out)
		}
		for i := range a {
			if diff := preservedAt(fmt.Sprintf("%s[%d]", path, i), key, a[i], b[i]); diff != "" {
				return diff
			}
		}
		return ""
	case json.Number:
		switch b := out.(type) {
		case json.Number:
			if numbersEqual(a, b) {
				return ""
			}
		case string:
			if durationKeys[key] && durationEqualsNumber(b, a) {
				return ""
			}
		}
		return fmt.Sprintf("%s: %v became %v", path, a, out)
	case bool:
		switch b := out.(type) {
		case bool:
			if a == b {
				return ""
			}
		case string:
			if key == "autostop" && ((!a && b == "off") || (a && b == "stop")) {
				return ""
			}
		}
		return fmt.Sprintf("%s: %v became %v", path, a, out)
	case string:
		b, ok := out.(string)
		if ok && (a == b || (durationKeys[key] && durationsEqual(a, b))) {
			return ""
		}
		return fmt.Sprintf("%s: %q became %v", path, a, out)
	case nil:
		if out == nil {
			return ""
		}
		return fmt.Sprintf("%s: null became %v", path, out)
	}
	return fmt.Sprintf("%s: unexpected %T", path, in)
}

func isZeroJSON(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case string:
		return x == ""
	case json.Number:
		// Parsed as a float64 field would parse it: 1e-400 underflows to 0 and is then dropped.
		f, err := strconv.ParseFloat(x.String(), 64)
		return err == nil && f == 0
	}
	return false
}

func numbersEqual(a, b json.Number) bool {
	if a == b {
		return true
	}
	fa, okA := new(big.Float).SetString(a.String())
	fb, okB := new(big.Float).SetString(b.String())
	if !okA || !okB {
		return false
	}
	if fa.Cmp(fb) == 0 {
		return true
	}
	// A float field re-encodes the float64 nearest the input; compare at that precision.
	a64, _ := fa.Float64()
	b64, _ := fb.Float64()
	return a64 == b64
}

func durationsEqual(a, b string) bool {
	da, errA := time.ParseDuration(a)
	db, errB := time.ParseDuration(b)
	return errA == nil && errB == nil && da == db
}

func durationEqualsNumber(s string, n json.Number) bool {
	d, err := time.ParseDuration(s)
	if err != nil {
		return false
	}
	f, ok := new(big.Float).SetString(n.String())
	if !ok {
		return false
	}
	i, acc := f.Int64()
	return acc == big.Exact && time.Duration(i) == d
}
