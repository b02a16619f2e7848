package driver

import (
	"context"
	"sync"

	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// maxCopies bounds the tree copies (snapshots, restores, clones) that run at
// once in one instance; more wait their turn, still reported not ready.
const maxCopies = 4

// copies runs tree copies in the background, one per destination directory,
// so that a snapshot or a restore of any size never runs inside one gRPC
// deadline: the caller starts a copy and asks again later.
type copies struct {
	mu   sync.Mutex
	jobs map[string]*copyJob
	slot chan struct{}
}

type copyJob struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error              // set before done is closed
	result backend.CopyResult // likewise
}

func newCopies() *copies {
	return &copies{jobs: map[string]*copyJob{}, slot: make(chan struct{}, maxCopies)}
}

// start runs copy for key unless a copy for key is already running, and
// returns the job either way. finish runs when the copy succeeded, before
// the job is marked done (it writes the record that says so).
func (c *copies) start(key string, copy func(ctx context.Context) (backend.CopyResult, error), finish func(backend.CopyResult) error) *copyJob {
	c.mu.Lock()
	defer c.mu.Unlock()
	if j, ok := c.jobs[key]; ok {
		select {
		case <-j.done:
			if j.err == nil {
				return j
			}
			// A failed copy is started again by the next call.
		default:
			return j
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &copyJob{cancel: cancel, done: make(chan struct{})}
	c.jobs[key] = j
	go func() {
		defer cancel()
		select {
		case c.slot <- struct{}{}:
			j.result, j.err = copy(ctx)
			<-c.slot
		case <-ctx.Done():
			j.err = ctx.Err()
		}
		if j.err == nil {
			j.err = finish(j.result)
		}
		if j.err != nil {
			klog.ErrorS(j.err, "Copy failed; it starts again when asked again", "to", key)
		}
		// A finished copy stays known until its directory is deleted
		// (stop): a caller that read the record just before it was marked
		// complete gets this job back rather than a second copy that would
		// empty the directory again.
		close(j.done)
	}()
	return j
}

// stop cancels the copy for key, if any, and waits until it has stopped:
// nothing writes into a directory that is about to be removed.
func (c *copies) stop(key string) {
	c.mu.Lock()
	j := c.jobs[key]
	c.mu.Unlock()
	if j == nil {
		return
	}
	j.cancel()
	<-j.done
	c.forget(key, j)
}

func (c *copies) forget(key string, j *copyJob) {
	c.mu.Lock()
	if c.jobs[key] == j {
		delete(c.jobs, key)
	}
	c.mu.Unlock()
}

// wait waits for j until ctx is done; it reports whether j finished.
func (j *copyJob) wait(ctx context.Context) bool {
	select {
	case <-j.done:
		return true
	case <-ctx.Done():
		return false
	}
}
