package flysim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// crockford is the ULID alphabet (Crockford base32: no I, L, O, U).
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idGenerator makes every identifier the emulator hands out. It is deterministic for a seed and not
// safe for concurrent use: the Server calls it with its state lock held.
type idGenerator struct {
	rng *rand.Rand
	// ulidRNG feeds ULIDs alone: how many draws they take depends on the wall clock (one per new
	// millisecond), so sharing rng with them would make machine IDs, and the per-machine profile
	// draws seeded by them, differ between runs of the same seed.
	ulidRNG *rand.Rand
	// Last ULID issued, so ULIDs made in the same millisecond still sort in issue order (event IDs are
	// compared to honour wait's from_event_id).
	lastMillis uint64
	lastHi     uint16
	lastLo     uint64
	issued     map[string]bool // machine IDs, app IDs, network IDs: never reused within one Server
}

func newIDGenerator(seed int64) *idGenerator {
	return &idGenerator{
		rng:     rand.New(rand.NewPCG(uint64(seed), 0x666c7973696d4944)), // "flysimID"
		ulidRNG: rand.New(rand.NewPCG(uint64(seed), 0x666c7973696d554c)), // "flysimUL"
		issued:  map[string]bool{},
	}
}

func (g *idGenerator) unique(make func() string) string {
	for {
		id := make()
		if !g.issued[id] {
			g.issued[id] = true
			return id
		}
	}
}

func (g *idGenerator) hex(n int) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for range n {
		b.WriteByte(digits[g.rng.IntN(16)])
	}
	return b.String()
}

// machineID is 14 lowercase hex characters, like "3d8d413b29d089".
func (g *idGenerator) machineID() string { return g.unique(func() string { return g.hex(14) }) }

// nonce is a lease nonce: 12 lowercase hex characters.
func (g *idGenerator) nonce() string { return g.hex(12) }

// appID is 16 lowercase alphanumerics, like "z4k69dxd8r31p5mx".
func (g *idGenerator) appID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	return g.unique(func() string {
		var b strings.Builder
		for range 16 {
			b.WriteByte(alphabet[g.rng.IntN(len(alphabet))])
		}
		return b.String()
	})
}

// networkID is the 32-bit 6PN network number; never 0 so addresses never look unset.
func (g *idGenerator) networkID() uint32 {
	for {
		id := g.rng.Uint32()
		key := fmt.Sprintf("net:%d", id)
		if id != 0 && !g.issued[key] {
			g.issued[key] = true
			return id
		}
	}
}

// numericID stands in for Fly's internal numeric IDs of orgs and apps.
func (g *idGenerator) numericID() int64 { return int64(g.rng.Uint32()>>1) + 1 }

// ulid returns a 26-character Crockford ULID for time t, monotonic within this generator.
func (g *idGenerator) ulid(t time.Time) string {
	ms := uint64(t.UnixMilli())
	if ms <= g.lastMillis {
		// Same (or an earlier) millisecond: keep the last timestamp and increment the random part.
		ms = g.lastMillis
		g.lastLo++
		if g.lastLo == 0 {
			g.lastHi++
		}
	} else {
		g.lastMillis = ms
		g.lastHi = uint16(g.ulidRNG.Uint32())
		g.lastLo = g.ulidRNG.Uint64() >> 1 // leave headroom so increments do not wrap in practice
	}
	return encodeULID(ms, g.lastHi, g.lastLo)
}

// encodeULID writes a 48-bit millisecond timestamp and 80 bits of entropy (hi:16, lo:64) in base32.
func encodeULID(ms uint64, hi uint16, lo uint64) string {
	var out [26]byte
	// 10 characters of timestamp: 50 bits, the top 2 always zero for 48-bit values.
	for i := 9; i >= 0; i-- {
		out[i] = crockford[ms&31]
		ms >>= 5
	}
	// 16 characters of entropy: 80 bits, taken 5 at a time from the low end.
	for i := 25; i >= 10; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | uint64(hi&31)<<59
		hi >>= 5
	}
	return string(out[:])
}

var nameAdjectives = []string{
	"aged", "bold", "brave", "calm", "crisp", "damp", "eager", "fancy", "gentle", "hidden",
	"icy", "jolly", "lively", "misty", "noisy", "odd", "proud", "quiet", "rapid", "shy",
	"steep", "tiny", "vivid", "wild", "young",
}

var nameNouns = []string{
	"breeze", "brook", "cloud", "dawn", "dew", "field", "fire", "flower", "forest", "frost",
	"glade", "hill", "lake", "leaf", "meadow", "moon", "night", "pond", "rain", "river",
	"sea", "sky", "snow", "star", "sun", "thunder", "wave", "wind",
}

// machineName makes a name in Fly's generated style ("aged-thunder-7371"). The caller checks it is
// free in the app.
func (g *idGenerator) machineName() string {
	return fmt.Sprintf("%s-%s-%04d",
		nameAdjectives[g.rng.IntN(len(nameAdjectives))],
		nameNouns[g.rng.IntN(len(nameNouns))],
		g.rng.IntN(10000))
}

// hostSuffix is the last five groups of a 6PN machine address (after fdaa and the two network
// groups), shaped like Fly's "a7b:1b0:e5fb:c9f5:2".
func (g *idGenerator) hostSuffix() string {
	return fmt.Sprintf("%x:%x:%x:%x:%x", 0xa7b, g.rng.IntN(0x10000), g.rng.IntN(0x10000), g.rng.IntN(0x10000), 2+g.rng.IntN(0xfffd))
}
