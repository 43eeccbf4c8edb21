package activity

import (
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func TestEncodeDecode(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 5, 700_000_000, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		name  string
		times Times
		want  string
	}{
		{"none", Times{}, `{}`},
		{"UTC, whole seconds, keys sorted", Times{"m2": at, AppWide: at.Add(-time.Minute), "m1": at},
			`{"*":"2026-03-01T10:59:05Z","m1":"2026-03-01T11:00:05Z","m2":"2026-03-01T11:00:05Z"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.times.Encode()
			if got != tc.want {
				t.Fatalf("Encode = %s, want %s", got, tc.want)
			}
			back, err := Decode(got)
			if err != nil {
				t.Fatal(err)
			}
			if back.Encode() != got {
				t.Errorf("Decode(Encode) = %s, want %s", back.Encode(), got)
			}
		})
	}
}

func TestDecodeRefusesGarbage(t *testing.T) {
	for _, value := range []string{`[1]`, `{"m1":"yesterday"}`, `{"m1":5}`} {
		if _, err := Decode(value); err == nil || !strings.Contains(err.Error(), Annotation) {
			t.Errorf("Decode(%s) = %v, want an error naming the annotation", value, err)
		}
	}
}

func TestLastFor(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	times := Times{"m1": t0, AppWide: t0.Add(time.Minute), "m2": t0.Add(2 * time.Minute)}
	for _, tc := range []struct {
		machine string
		want    time.Time
	}{
		{"m1", t0.Add(time.Minute)},     // the app-wide request is newer
		{"m2", t0.Add(2 * time.Minute)}, // its own is newer
		{"m3", t0.Add(time.Minute)},     // only app-wide requests
	} {
		if got := times.LastFor(tc.machine); !got.Equal(tc.want) {
			t.Errorf("LastFor(%s) = %s, want %s", tc.machine, got, tc.want)
		}
	}
	if got := (Times{}).LastFor("m1"); !got.IsZero() {
		t.Errorf("LastFor without requests = %s, want zero", got)
	}
}

func TestOfAndLabels(t *testing.T) {
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{Annotation: `{"m1":"2026-03-01T12:00:00Z"}`}}}
	times, err := Of(lease)
	if err != nil || len(times) != 1 {
		t.Fatalf("Of = %v, %v", times, err)
	}
	if times, err := Of(nil); err != nil || len(times) != 0 {
		t.Errorf("Of(nil) = %v, %v, want no times", times, err)
	}
	long := strings.Repeat("a", 64)
	if l := Labels("team", long); l[LabelAppName] != "" || l[LabelAppNamespace] != "team" || !Selector().Matches(labels.Set(l)) {
		t.Errorf("Labels with a 64-character name = %v, want the name left out and the selector matching", l)
	}
	if l := Labels("team", "alice"); l[LabelAppName] != "alice" {
		t.Errorf("Labels = %v, want the name", l)
	}
	if got := LeaseName("6a0e4f1c-0000-4000-8000-000000000001"); got != "activity-6a0e4f1c-0000-4000-8000-000000000001" {
		t.Errorf("LeaseName = %s", got)
	}
}
