// Package managers runs several manager processes (the real cmd/manager binary) against one
// apiserver and one Fly emulator: replicas of a shard handing over leadership when the leader is
// killed or stopped, and shards (--selector) splitting the objects between managers. Each manager
// holds its own Fly token, so the emulator's call log tells which one made each call.
package managers
