package driver

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// Kubelet asks for each volume's stats about once a minute and waits on the
// answer; counting an NFS volume's files, or a server that stopped
// answering, must not hold it up. Measurements run in the background, one
// at a time per volume, and a call gets the last one.
const (
	statsFresh   = 30 * time.Second // a measurement younger than this is served as is
	statsWait    = 2 * time.Second  // how long a call waits for a measurement under way
	statsTimeout = 5 * time.Minute  // a measurement that takes longer is abandoned
	statsStuck   = 10 * time.Second // a measurement slower than this makes the volume abnormal
	statsMax     = 20000            // entries kept; published volumes of one node
)

type statsEntry struct {
	last    *volumeStats
	lastErr error
	started time.Time     // of the measurement under way; zero if none
	done    chan struct{} // closed when it ends
	at      time.Time     // when last was taken
}

type statsCache struct {
	measure func(ctx context.Context, id volumeid.ID, path string) (volumeStats, error)
	mu      sync.Mutex
	entries map[string]*statsEntry
}

func newStatsCache(m func(context.Context, volumeid.ID, string) (volumeStats, error)) *statsCache {
	return &statsCache{measure: m, entries: map[string]*statsEntry{}}
}

// get returns a recent measurement of the volume published at path,
// starting one if needed and waiting for it a little.
func (c *statsCache) get(ctx context.Context, id volumeid.ID, path string) (volumeStats, error) {
	key := id.String() + "@" + path
	c.mu.Lock()
	e := c.entries[key]
	if e == nil {
		if len(c.entries) >= statsMax {
			for k := range c.entries { // drop one arbitrary entry
				delete(c.entries, k)
				break
			}
		}
		e = &statsEntry{}
		c.entries[key] = e
	}
	if (e.last == nil || time.Since(e.at) > statsFresh) && e.started.IsZero() {
		c.start(e, id, path)
	}
	done, started := e.done, e.started
	c.mu.Unlock()

	if !started.IsZero() {
		select {
		case <-done:
		case <-time.After(statsWait):
		case <-ctx.Done():
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !e.started.IsZero() && time.Since(e.started) > statsStuck {
		// No answer for a while: say so, with the last numbers if any.
		st := volumeStats{}
		if e.last != nil {
			st = *e.last
		}
		st.abnormal = status.Errorf(codes.Unavailable, "volume %s is abnormal: no answer from its storage (%s) for %s; check the server and the network", id.String(), id.Where(), time.Since(e.started).Round(time.Second))
		return st, nil
	}
	if e.last == nil {
		if e.lastErr != nil {
			return volumeStats{}, status.Errorf(codes.Internal, "stats of volume %s: %v", id.String(), e.lastErr)
		}
		return volumeStats{}, status.Errorf(codes.Unavailable, "stats of volume %s are still being counted; ask again", id.String())
	}
	return *e.last, nil
}

// start runs one measurement in the background; c.mu is held.
func (c *statsCache) start(e *statsEntry, id volumeid.ID, path string) {
	e.started, e.done = time.Now(), make(chan struct{})
	done := e.done
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
		defer cancel()
		st, err := c.measure(ctx, id, path)
		c.mu.Lock()
		defer c.mu.Unlock()
		e.started = time.Time{}
		close(done)
		if err != nil {
			klog.V(2).InfoS("Measuring a volume failed", "volumeID", id.String(), "path", path, "err", err)
			e.lastErr = err
			if e.last != nil {
				// Keep serving the last numbers, marked, until one succeeds.
				st = *e.last
				st.abnormal = status.Errorf(codes.Internal, "measuring volume %s failed: %v", id.String(), err)
				e.last = &st
			}
			return
		}
		e.last, e.lastErr, e.at = &st, nil, time.Now()
	}()
}

// forget drops what is known of a volume published at path (unpublished).
func (c *statsCache) forget(volumeID, path string) {
	c.mu.Lock()
	delete(c.entries, volumeID+"@"+path)
	c.mu.Unlock()
}
