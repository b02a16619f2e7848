package backend

import (
	"errors"
	"fmt"
	"strings"
)

// ErrOtherFilesystem is wrapped when a removal met a mount point inside the
// tree (a filesystem mounted inside a volume, which the base path's
// Bidirectional propagation makes possible) and left it, contents and all.
var ErrOtherFilesystem = errors.New("another filesystem is mounted inside")

// ErrOtherStore is wrapped when a removal met a directory named .stowage (in
// any case) inside the tree: the records of another store whose base path
// or share lies inside the volume. It is left as it is.
var ErrOtherStore = errors.New("another Stowage store's records (.stowage) are inside")

// maxLeftPaths is how many paths a LeftError names.
const maxLeftPaths = 5

// LeftError says what a removal could not remove. errors.Is finds the
// reasons in it: ErrOtherFilesystem, ErrOtherStore, and the first other error.
type LeftError struct {
	// Paths are the first few entries left, relative to the store's root.
	Paths []string
	// Count is how many entries were left in all (a directory left because
	// of what is inside it is not counted itself).
	Count int
	// Reasons holds each distinct reason once.
	Reasons []error
}

// Note records that path was left because of reason; it does not count it
// (callers count once per entry, when they know an entry stays for good).
func (e *LeftError) Note(path string, reason error) {
	if len(e.Paths) < maxLeftPaths && !contains(e.Paths, path) {
		e.Paths = append(e.Paths, path)
	}
	for _, r := range e.Reasons {
		if errors.Is(reason, r) || (!isSentinel(reason) && !isSentinel(r)) {
			return // only the first of the errors that are not ours
		}
	}
	e.Reasons = append(e.Reasons, reason)
}

func isSentinel(err error) bool { return err == ErrOtherFilesystem || err == ErrOtherStore }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (e *LeftError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d entries could not be removed", e.Count)
	if len(e.Paths) > 0 {
		fmt.Fprintf(&b, ", among them %s", strings.Join(e.Paths, ", "))
	}
	reasons := make([]string, len(e.Reasons))
	for i, r := range e.Reasons {
		reasons[i] = r.Error()
	}
	if len(reasons) > 0 {
		fmt.Fprintf(&b, ": %s", strings.Join(reasons, "; "))
	}
	if errors.Is(e, ErrOtherFilesystem) {
		b.WriteString("; unmount what is mounted inside the volume, then retry")
	}
	if errors.Is(e, ErrOtherStore) {
		b.WriteString("; a base path or share of another Stowage store lies inside the volume: move it out, then retry")
	}
	return b.String()
}

func (e *LeftError) Unwrap() []error { return e.Reasons }
