package remote

import (
	"container/list"
	"sync"

	"github.com/repld/repld/storage"
)

// cache holds current object revisions, least recently used first out,
// bounded by count and bytes. Invalidations remove entries and advance
// gen; a load result is only cached if no invalidation arrived while it
// was in flight (its gen is still current), because that invalidation may
// be for a revision newer than the result.
type cache struct {
	maxObjects, maxBytes int

	mu      sync.Mutex
	gen     uint64
	bytes   int
	lru     *list.List // of *entry, most recent first
	entries map[storage.OID]*list.Element
}

type entry struct {
	oid    storage.OID
	serial storage.TID
	data   []byte
}

func newCache(maxObjects, maxBytes int) *cache {
	return &cache{maxObjects: maxObjects, maxBytes: maxBytes, lru: list.New(), entries: make(map[storage.OID]*list.Element)}
}

// generation returns the current generation, to pass to put.
func (c *cache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// get returns a copy of oid's cached data and serial.
func (c *cache) get(oid storage.OID) ([]byte, storage.TID, bool) {
	if c.maxObjects <= 0 {
		return nil, 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[oid]
	if !ok {
		return nil, 0, false
	}
	c.lru.MoveToFront(el)
	e := el.Value.(*entry)
	return append([]byte{}, e.data...), e.serial, true
}

// put caches a copy of data as oid's current revision if no invalidation
// happened since generation gen.
func (c *cache) put(gen uint64, oid storage.OID, serial storage.TID, data []byte) {
	if c.maxObjects <= 0 || len(data) > c.maxBytes/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	c.removeLocked(oid)
	c.entries[oid] = c.lru.PushFront(&entry{oid: oid, serial: serial, data: append([]byte{}, data...)})
	c.bytes += len(data)
	for c.lru.Len() > c.maxObjects || c.bytes > c.maxBytes {
		c.removeLocked(c.lru.Back().Value.(*entry).oid)
	}
}

// invalidate drops oids.
func (c *cache) invalidate(oids []storage.OID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, oid := range oids {
		c.removeLocked(oid)
	}
}

// flush drops everything: the client may have missed invalidations.
func (c *cache) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.lru.Init()
	clear(c.entries)
	c.bytes = 0
}

func (c *cache) removeLocked(oid storage.OID) {
	if el, ok := c.entries[oid]; ok {
		c.bytes -= len(el.Value.(*entry).data)
		c.lru.Remove(el)
		delete(c.entries, oid)
	}
}
