package flyapi

import (
	"bytes"
	"encoding/json"
	"testing"
)

// Fuzz targets: whatever JSON decodes into a Machine or MachineConfig must re-encode without
// losing a member (see preserved for the allowed rewrites), and encoding must be a fixpoint.
// Run longer with: go test -run '^$' -fuzz FuzzMachineConfigRoundTrip ./internal/flyapi/

var configSeeds = []string{
	fullConfig,
	`{}`,
	`null`,
	`{"image":"nginx","services":[{"autostop":false,"autostart":true,"ports":[{"port":80,"handlers":[]}]}]}`,
	`{"checks":{"a":{"interval":15000000000,"timeout":"1m","grace_period":1e9}}}`,
	`{"stop_config":{"timeout":"10s","signal":"SIGINT","future":{"x":[1,2]}}}`,
	`{"image":"a","IMAGE":"b","Image":null}`,
	`{"spot":{"max_price_fraction":1e-3},"guest":{"cpus":0,"memory_mb":256}}`,
	`{"containers":[{"healthchecks":[{"interval":"10s","grace_period":5,"http":{"headers":{"a":"b"}}}]}]}`,
	`{"services":[{"ports":[{"http_options":{"response":{"headers":{"a":["b","c"],"d":"e"}}}}]}]}`,
}

var machineSeeds = []string{
	`{"id":"3d8d413b29d089","state":"started","config":` + fullConfig + `}`,
	`{"id":"m","events":[{"timestamp":1,"request":{"exit_event":{"exit_code":1}}}],"lease":{"expires_at":2},"x":null}`,
	`{"incomplete_config":{"image":"a","services":[{"autostop":true}]},"host_status":"unreachable"}`,
}

func FuzzMachineConfigRoundTrip(f *testing.F) {
	for _, seed := range configSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkRoundTrip[MachineConfig](t, in)
	})
}

func FuzzMachineRoundTrip(f *testing.F) {
	for _, seed := range append(machineSeeds, configSeeds...) {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkRoundTrip[Machine](t, in)
	})
}

func checkRoundTrip[T any](t *testing.T, in []byte) {
	var v T
	if json.Unmarshal(in, &v) != nil {
		return // not a valid document for T: nothing to preserve
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding a decoded value failed: %v", err)
	}
	if generic, err := decodeGeneric(in); err == nil {
		if _, isObject := generic.(map[string]any); isObject {
			encoded, err := decodeGeneric(out)
			if err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			if diff := preserved(generic, encoded); diff != "" {
				t.Fatalf("lost data: %s\ninput:  %s\noutput: %s", diff, in, out)
			}
		}
	}
	var again T
	if err := json.Unmarshal(out, &again); err != nil {
		t.Fatalf("output does not decode: %v\n%s", err, out)
	}
	out2, err := json.Marshal(again)
	if err != nil {
		t.Fatalf("second encode: %v", err)
	}
	if !bytes.Equal(out, out2) {
		t.Fatalf("encoding is not a fixpoint:\n%s\n%s", out, out2)
	}
}
