package router

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

// BenchmarkHandlerWithActivity is BenchmarkHandler with activity on: every replay also records the
// request in its machine's slot (compare the two for the cost of recording).
func BenchmarkHandlerWithActivity(b *testing.B) {
	r := newTestRouter(b, withRealClock())
	r.builder.activity = newActivityRecorder()
	hostList := make([]string, 0, 2000)
	for i := range 1000 {
		ns := fmt.Sprintf("tenant-%06d", i)
		flyApp := fmt.Sprintf("app-%06d", i)
		host := fmt.Sprintf("u%06d.example.com", i)
		r.builder.UpsertApp(newApp(ns, "app", flyApp, hosts(host), subdomain(fmt.Sprintf("u%06d", i)),
			withUID(types.UID(fmt.Sprintf("uid-%06d", i)))))
		r.builder.UpsertMachine(newMachine(ns, "vm", "app", flyApp, fmt.Sprintf("%014x", i)))
		hostList = append(hostList, host, fmt.Sprintf("u%06d.apps.example.net", i))
	}
	r.publish()
	handlerBench(r.public, requestsFor(hostList))(b)
	if got := len(r.builder.activity.snapshot()); got != 1000 {
		b.Fatalf("%d apps with activity, want 1000", got)
	}
}
