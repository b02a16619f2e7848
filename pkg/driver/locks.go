package driver

import (
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// locks keeps one in-flight operation per volume. A second call for the same
// volume is answered with Aborted, which the CSI spec reserves for exactly
// this, and the caller (Kubernetes) retries; calls for other volumes go on.
type locks struct {
	mu       sync.Mutex
	inFlight map[string]struct{}
}

func newLocks() *locks { return &locks{inFlight: map[string]struct{}{}} }

// acquire takes the lock for key or returns an Aborted status error.
func (l *locks) acquire(key string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, busy := l.inFlight[key]; busy {
		return nil, status.Errorf(codes.Aborted, "an operation on volume %s is already in progress; retry later", key)
	}
	l.inFlight[key] = struct{}{}
	return func() {
		l.mu.Lock()
		delete(l.inFlight, key)
		l.mu.Unlock()
	}, nil
}
