package keys

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
)

func TestOwnerMarker(t *testing.T) {
	root := mustRoot(t)
	other, err := ParseRoot(bytes.Repeat([]byte{9}, RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	marker := root.OwnerMarker("app-a", "uid-1")
	envName := regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	if !envName.MatchString(marker) || !IsOwnerMarker(marker) {
		t.Fatalf("marker %q is not an owner marker usable as an environment name", marker)
	}
	if root.OwnerMarker("app-a", "uid-1") != marker {
		t.Fatal("marker not stable")
	}
	for name, m := range map[string]string{
		"another owner":        root.OwnerMarker("app-a", "uid-2"),
		"another app":          root.OwnerMarker("app-b", "uid-1"),
		"another installation": other.OwnerMarker("app-a", "uid-1"),
	} {
		if m == marker || !IsOwnerMarker(m) {
			t.Errorf("%s: marker %q should differ from %q and be a marker", name, m, marker)
		}
	}
	if IsOwnerMarker("HANGAR_REPLAY_KEY") {
		t.Error("the replay key secret read as an owner marker")
	}
}

func TestReleaseMarker(t *testing.T) {
	// The operator's recipe in ReleaseMarker's doc: printf '%s' 'team-a/alice' | sha256sum | cut -c1-32 | tr a-f A-F
	const want = "HANGAR_RELEASE_"
	got := ReleaseMarker("team-a", "alice")
	sum := sha256.Sum256([]byte("team-a/alice"))
	if got != want+strings.ToUpper(hex.EncodeToString(sum[:])[:32]) {
		t.Fatalf("ReleaseMarker = %q", got)
	}
	if ReleaseMarker("team-a", "bob") == got || ReleaseMarker("team-b", "alice") == got || IsOwnerMarker(got) {
		t.Fatal("release markers must differ per object and never read as owner markers")
	}
}
