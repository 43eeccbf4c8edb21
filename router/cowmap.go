package router

import (
	"hash/maphash"
	"math/bits"
)

// cowShards is how many shards a cowMap has. At 100 000 routes a shard holds about 100 keys, so a
// change copies a few shards of that size and the 24 KiB shard table, not the whole map.
const cowShards = 1024

// cowSeed hashes keys; a fresh seed per process, as Go's own maps have.
var cowSeed = maphash.MakeSeed()

// cowMap is an immutable map from non-empty strings, split into shards by a hash of the key. A new
// version (see cowEdit) copies only the shards it changes and shares the rest with the old one,
// which its readers keep using untouched.
//
// A shard is a flat open-addressing table holding each key's hash, so a lookup hashes once and
// reads the shard table, one or two slots and the key: no more memory than a Go map lookup reads,
// and nothing allocated. (The well-kept persistent maps for Go are radix trees or HAMTs, whose
// lookups walk several nodes; a map of Go maps reads a map header and a directory more.)
type cowMap[V any] struct {
	shards *[cowShards]cowShard[V]
	n      int
}

// cowShard is a linear-probing table whose length is a power of two with free slots;
// a free slot has an empty key.
type cowShard[V any] []cowEntry[V]

type cowEntry[V any] struct {
	hash uint64
	key  string
	val  V
}

func cowHash(key string) uint64 { return maphash.String(cowSeed, key) }

// shardOf picks a shard by the hash's low bits; slotOf starts probing with its high bits, which
// are independent of them.
func shardOf(h uint64) int { return int(h % cowShards) }

func slotOf(h uint64, mask int) int { return int(h>>32) & mask }

// get returns the value of key, or the zero value.
func (m cowMap[V]) get(key string) V {
	var zero V
	if m.shards == nil {
		return zero
	}
	h := cowHash(key)
	s := m.shards[shardOf(h)]
	if len(s) == 0 {
		return zero
	}
	mask := len(s) - 1
	for i := slotOf(h, mask); ; i = (i + 1) & mask {
		e := &s[i]
		if e.key == "" {
			return zero
		}
		if e.hash == h && e.key == key {
			return e.val
		}
	}
}

// size is the number of keys.
func (m cowMap[V]) size() int { return m.n }

// cowEdit makes the next version of a cowMap. The version it started from is never written: the
// shards an edit changes are unpacked into Go maps and packed into new tables by done.
type cowEdit[V any] struct {
	base    cowMap[V]
	changed map[int]map[string]V
	n       int
}

// edit starts the next version of m.
func (m cowMap[V]) edit() *cowEdit[V] {
	return &cowEdit[V]{base: m, changed: map[int]map[string]V{}, n: m.n}
}

func (e *cowEdit[V]) get(key string) V {
	if s, ok := e.changed[shardOf(cowHash(key))]; ok {
		return s[key]
	}
	return e.base.get(key)
}

// set maps key, which must not be empty, to v.
func (e *cowEdit[V]) set(key string, v V) {
	s := e.unpack(shardOf(cowHash(key)))
	if _, ok := s[key]; !ok {
		e.n++
	}
	s[key] = v
}

// remove drops key (nothing when it is absent).
func (e *cowEdit[V]) remove(key string) {
	s := e.unpack(shardOf(cowHash(key)))
	if _, ok := s[key]; ok {
		delete(s, key)
		e.n--
	}
}

// unpack returns shard i as a Go map the edit may change.
func (e *cowEdit[V]) unpack(i int) map[string]V {
	if s, ok := e.changed[i]; ok {
		return s
	}
	var old cowShard[V]
	if e.base.shards != nil {
		old = e.base.shards[i]
	}
	s := make(map[string]V, len(old)/2+1)
	for _, entry := range old {
		if entry.key != "" {
			s[entry.key] = entry.val
		}
	}
	e.changed[i] = s
	return s
}

// done returns the new version: the base's shard table with the changed shards packed anew.
func (e *cowEdit[V]) done() cowMap[V] {
	if len(e.changed) == 0 {
		return e.base
	}
	table := new([cowShards]cowShard[V])
	if e.base.shards != nil {
		*table = *e.base.shards
	}
	for i, s := range e.changed {
		table[i] = pack(s)
	}
	return cowMap[V]{shards: table, n: e.n}
}

// pack lays s out as a table at most four-fifths full: probes stay within a cache line or two,
// and the shards take 40 to 80 bytes per key.
func pack[V any](s map[string]V) cowShard[V] {
	if len(s) == 0 {
		return nil
	}
	size := 1 << bits.Len(uint(len(s)+len(s)/4))
	out := make(cowShard[V], size)
	mask := size - 1
	for key, v := range s {
		h := cowHash(key)
		i := slotOf(h, mask)
		for out[i].key != "" {
			i = (i + 1) & mask
		}
		out[i] = cowEntry[V]{hash: h, key: key, val: v}
	}
	return out
}
