package flysim

import (
	"sync"
	"time"
)

// MachineEvent reports one machine state change, from the API or out of band.
type MachineEvent struct {
	App       string
	MachineID string
	OldState  string
	NewState  string
	Version   string // the machine's current version after the change
	Time      time.Time
}

// eventBus delivers MachineEvents to subscribers in order, on its own goroutine, so subscribers may
// call back into the Server.
type eventBus struct {
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []MachineEvent
	subs   map[int]func(MachineEvent)
	nextID int
	closed bool
}

func newEventBus() *eventBus {
	b := &eventBus{subs: map[int]func(MachineEvent){}}
	b.cond = sync.NewCond(&b.mu)
	go b.deliver()
	return b
}

func (b *eventBus) publish(e MachineEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || len(b.subs) == 0 {
		return
	}
	b.queue = append(b.queue, e)
	b.cond.Signal()
}

func (b *eventBus) deliver() {
	for {
		b.mu.Lock()
		for len(b.queue) == 0 && !b.closed {
			b.cond.Wait()
		}
		if b.closed {
			b.mu.Unlock()
			return
		}
		batch := b.queue
		b.queue = nil
		subs := make([]func(MachineEvent), 0, len(b.subs))
		for id := range b.nextID {
			if fn, ok := b.subs[id]; ok {
				subs = append(subs, fn)
			}
		}
		b.mu.Unlock()
		for _, e := range batch {
			for _, fn := range subs {
				fn(e)
			}
		}
	}
}

func (b *eventBus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.cond.Broadcast()
}

// Subscribe calls fn for every later machine state change, in order, on a goroutine of the Server
// (fn may call the Server). The returned cancel stops delivery to fn.
func (s *Server) Subscribe(fn func(MachineEvent)) (cancel func()) {
	b := s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.nextID
	b.nextID++
	b.subs[id] = fn
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.subs, id)
	}
}
