package router

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"

	toolscache "k8s.io/client-go/tools/cache"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

// The heap figures cache objects the way the router's informers do: decode the JSON the apiserver
// sends (managedFields and full spec included), apply the router's cache transform, store the
// result in a client-go indexer with the namespace index controller-runtime adds, hand it to the
// Builder and build the index. Nothing is signed yet (signatures are made on the first request of
// each bucket; their cost is logged separately).

const heapObjects = 20_000

// userAppJSON and userMachineJSON look like what `kubectl get -o json` shows for the samples after
// the manager has reconciled them.
const userAppJSON = `{"apiVersion":"fly.hangar.dev/v1alpha1","kind":"UserApp","metadata":{"name":"app","namespace":"%[1]s",
"uid":"5b0e6a3c-2f4e-4a7b-9a51-%012[2]d","resourceVersion":"%[2]d","generation":1,"creationTimestamp":"2026-01-01T00:00:00Z",
"finalizers":["fly.hangar.dev/finalizer"],"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"fly.hangar.dev/v1alpha1\",\"kind\":\"UserApp\",\"metadata\":{\"name\":\"app\",\"namespace\":\"%[1]s\"},\"spec\":{\"privateIP\":true,\"routing\":{\"hosts\":[\"%[3]s.example.com\"],\"subdomain\":\"%[3]s\"}}}"},
"managedFields":[{"manager":"kubectl-client-side-apply","operation":"Update","apiVersion":"fly.hangar.dev/v1alpha1","time":"2026-01-01T00:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:annotations":{".":{},"f:kubectl.kubernetes.io/last-applied-configuration":{}}},"f:spec":{".":{},"f:deletionPolicy":{},"f:privateIP":{},"f:routing":{".":{},"f:auth":{},"f:hosts":{},"f:subdomain":{}}}}},
{"manager":"hangar-manager","operation":"Update","apiVersion":"fly.hangar.dev/v1alpha1","time":"2026-01-01T00:00:05Z","fieldsType":"FieldsV1","fieldsV1":{"f:status":{".":{},"f:appID":{},"f:appName":{},"f:conditions":{},"f:network":{},"f:observedGeneration":{},"f:org":{},"f:privateIP":{},"f:secretsVersion":{}}},"subresource":"status"}]},
"spec":{"allocatePrivateIP":true,"deletionPolicy":"Delete","routing":{"auth":"Public","hosts":["%[3]s.example.com"],"subdomain":"%[3]s"}},
"status":{"appID":"x1y2z3a4b5c6d7e8","appName":"app-%06[2]d","network":"app-%06[2]d","org":"personal","privateIP":"fdaa:0:1::3","secretsVersion":3,"observedGeneration":1,
"conditions":[{"type":"Ready","status":"True","reason":"Ready","message":"The Fly app is ready","lastTransitionTime":"2026-01-01T00:00:05Z","observedGeneration":1},
{"type":"AppCreated","status":"True","reason":"Created","message":"Fly app created","lastTransitionTime":"2026-01-01T00:00:02Z","observedGeneration":1},
{"type":"SecretsSynced","status":"True","reason":"Ready","message":"3 secrets set","lastTransitionTime":"2026-01-01T00:00:03Z","observedGeneration":1},
{"type":"PrivateIPReady","status":"True","reason":"Ready","message":"fdaa:0:1::3","lastTransitionTime":"2026-01-01T00:00:04Z","observedGeneration":1}]}}`

const userMachineJSON = `{"apiVersion":"fly.hangar.dev/v1alpha1","kind":"UserMachine","metadata":{"name":"vm","namespace":"%[1]s",
"uid":"7c1d2e3f-4a5b-4c6d-8e9f-%012[2]d","resourceVersion":"%[2]d","generation":1,"creationTimestamp":"2026-01-01T00:00:00Z",
"finalizers":["fly.hangar.dev/finalizer"],
"managedFields":[{"manager":"kubectl-client-side-apply","operation":"Update","apiVersion":"fly.hangar.dev/v1alpha1","time":"2026-01-01T00:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{".":{},"f:appRef":{".":{},"f:name":{}},"f:env":{".":{},"f:WORKSPACE_OWNER":{}},"f:guest":{".":{},"f:cpuKind":{},"f:cpus":{},"f:memoryMB":{}},"f:image":{},"f:powerState":{},"f:region":{}}}},
{"manager":"hangar-manager","operation":"Update","apiVersion":"fly.hangar.dev/v1alpha1","time":"2026-01-01T00:00:09Z","fieldsType":"FieldsV1","fieldsV1":{"f:status":{".":{},"f:appName":{},"f:conditions":{},"f:configHash":{},"f:lastObservedTime":{},"f:machineID":{},"f:machineName":{},"f:observedGeneration":{},"f:privateIP":{},"f:region":{},"f:state":{},"f:version":{}}},"subresource":"status"}]},
"spec":{"appRef":{"name":"app"},"region":"ord","image":"registry.fly.io/hangar-sample-workspace:latest","guest":{"cpuKind":"shared","cpus":1,"memoryMB":512},
"env":{"WORKSPACE_OWNER":"%[3]s"},"powerState":"Auto"},
"status":{"appName":"app-%06[2]d","machineID":"%014[2]x","machineName":"vm-3k2j8f","version":"01JG8ZQ3X4Y5Z6A7B8C9D0E1F2","region":"ord","privateIP":"fdaa:0:1:a7b:1::2","state":"started",
"configHash":"sha256:0123456789abcdef0123456789abcdef","lastObservedTime":"2026-01-01T00:00:09Z","observedGeneration":1,
"conditions":[{"type":"Ready","status":"True","reason":"Ready","message":"The machine is running the desired config","lastTransitionTime":"2026-01-01T00:00:09Z","observedGeneration":1},
{"type":"AppReady","status":"True","reason":"Ready","message":"UserApp app is ready","lastTransitionTime":"2026-01-01T00:00:06Z","observedGeneration":1},
{"type":"MachineCreated","status":"True","reason":"Created","message":"Fly machine created","lastTransitionTime":"2026-01-01T00:00:07Z","observedGeneration":1},
{"type":"ConfigSynced","status":"True","reason":"Ready","message":"config applied","lastTransitionTime":"2026-01-01T00:00:08Z","observedGeneration":1},
{"type":"PowerStateSynced","status":"True","reason":"Ready","message":"auto","lastTransitionTime":"2026-01-01T00:00:09Z","observedGeneration":1}]}}`

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func newStore() toolscache.Indexer {
	return toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc,
		toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
}

// cacheLike decodes, transforms and stores one object as the informer does.
func cacheLike[T any](t testing.TB, store toolscache.Indexer, raw string, transform func(any) (any, error)) any {
	obj := new(T)
	if err := json.Unmarshal([]byte(raw), obj); err != nil {
		t.Fatal(err)
	}
	stripped, err := transform(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Add(stripped); err != nil {
		t.Fatal(err)
	}
	return stripped
}

// TestReportHeap reports, for `make bench`, the heap held per cached UserMachine and per route. It
// checks nothing.
func TestReportHeap(t *testing.T) {
	skipUnlessBench(t)
	r := newTestRouter(t)
	apps, machines := newStore(), newStore()
	raws := make([]string, heapObjects) // formatted before measuring and kept alive across it
	for i := range heapObjects {
		ns := fmt.Sprintf("tenant-%06d", i)
		app := cacheLike[flyv1alpha1.UserApp](t, apps, fmt.Sprintf(strings.ReplaceAll(userAppJSON, "\n", ""), ns, i, fmt.Sprintf("u%06d", i)), stripUserApp)
		r.builder.UpsertApp(app.(*flyv1alpha1.UserApp))
		raws[i] = fmt.Sprintf(strings.ReplaceAll(userMachineJSON, "\n", ""), ns, i, fmt.Sprintf("u%06d", i))
	}
	r.publish()
	before := heapInUse()

	for _, raw := range raws {
		m := cacheLike[flyv1alpha1.UserMachine](t, machines, raw, stripUserMachine)
		r.builder.UpsertMachine(m.(*flyv1alpha1.UserMachine))
	}
	r.publish()
	after := heapInUse()
	runtime.KeepAlive(raws)
	perMachine := float64(int64(after)-int64(before)) / heapObjects
	t.Logf("heap: before machines %d, after %d", before, after)

	// The index's own share: drop it and what the Builder keeps to update it (groups, claims,
	// derived keys and signature caches), and see what is freed.
	ix := r.table.Load()
	routes := ix.Routes()
	withIndex := heapInUse()
	r.table.Store(nil)
	r.builder.mu.Lock()
	r.builder.built = newBuilt()
	r.builder.mu.Unlock()
	ix = nil
	withoutIndex := heapInUse()
	perRoute := float64(int64(withIndex)-int64(withoutIndex)) / float64(routes)

	// Signing: what the first request of a bucket adds per target (header form).
	r.builder.markAllDirty()
	r.publish()
	ix = r.table.Load()
	hostNames := make([]string, heapObjects)
	for i := range hostNames {
		hostNames[i] = fmt.Sprintf("u%06d.example.com", i)
	}
	cold := heapInUse()
	for _, h := range hostNames {
		tgt, _ := resolveHost(ix, h)
		tgt.replay.values(testNow)
	}
	warm := heapInUse()
	runtime.KeepAlive(hostNames)
	runtime.KeepAlive(r)
	signed := float64(int64(warm)-int64(cold)) / heapObjects
	t.Logf("heap: with index %d, without %d, cold %d, warm %d", withIndex, withoutIndex, cold, warm)

	t.Logf("%d UserMachines: %.0f B each (cache + builder + index share); index: %d routes, %.0f B per route; signed values: %.0f B per target",
		heapObjects, perMachine, routes, perRoute, signed)
	report("router_heap_per_usermachine_bytes", perMachine, "B", "<=", 2048)
	report("router_heap_per_route_bytes", perRoute, "B", "<=", 1024)
	// Everything measured must stay reachable until the last reading.
	runtime.KeepAlive(r)
	runtime.KeepAlive(apps)
	runtime.KeepAlive(machines)
}
