package cache

import (
	"sync"
)

// viewLocks hands out one RWMutex per key, refcounted so that the map only
// holds keys in use. Keys are a volume ID (no '/') or "<volume>/<pod>".
type viewLocks struct {
	mu sync.Mutex
	m  map[string]*viewLock
}

type viewLock struct {
	sync.RWMutex
	refs int
}

// view locks one view, and its volume shared so that the volume directory
// stays while the view is worked on.
func (l *viewLocks) view(volumeID, podUID string, exclusive bool) (unlock func()) {
	vol := l.get(volumeID)
	vol.RLock()
	key := volumeID + "/" + podUID
	e := l.get(key)
	if exclusive {
		e.Lock()
	} else {
		e.RLock()
	}
	return func() {
		if exclusive {
			e.Unlock()
		} else {
			e.RUnlock()
		}
		l.put(key, e)
		vol.RUnlock()
		l.put(volumeID, vol)
	}
}

// volume locks a volume and so every view of it.
func (l *viewLocks) volume(volumeID string) (unlock func()) {
	e := l.get(volumeID)
	e.Lock()
	return func() {
		e.Unlock()
		l.put(volumeID, e)
	}
}

func (l *viewLocks) get(key string) *viewLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*viewLock{}
	}
	e := l.m[key]
	if e == nil {
		e = &viewLock{}
		l.m[key] = e
	}
	e.refs++
	return e
}

func (l *viewLocks) put(key string, e *viewLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.refs--; e.refs == 0 {
		delete(l.m, key)
	}
}
