package nfs

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	gonfs "github.com/willscott/go-nfs-client/nfs"
)

// File data moves in chunks of the transfer size, each read and written by
// whichever data connection is free, so one large file streams over all of
// them at once and many small files do too. Writes are UNSTABLE; the
// file whose last chunk is written goes to a finisher, which COMMITs it once
// and then sets its attributes (after the data, or the writes would move
// mtime).

// holeBlock is the granularity of hole keeping: an all-zero run this long
// in the source is not written, which leaves a hole in the copy (NFSv3 has
// no SEEK_HOLE, so zeros are found by reading them).
const holeBlock = 64 << 10

var zeros [holeBlock]byte

// fileCopy is one regular file whose data is being copied.
type fileCopy struct {
	src, dst []byte
	dir      *pathNode
	name     string
	attr     gonfs.Fattr

	pending atomic.Int64 // chunks not yet copied, plus one while queueing

	mu    sync.Mutex
	wrote bool   // something was written, so a COMMIT is due
	verf  uint64 // the server's write verifier of the first write
	lost  bool   // writes came back with different verifiers
}

// chunkTask is one chunk of a file: [off, off+chunk) or to its end.
type chunkTask struct {
	f   *fileCopy
	off uint64
}

// queueFile hands f's chunks to the data connections; an empty file is
// finished here.
func (cp *treeCopy) queueFile(ctx context.Context, f *fileCopy) error {
	size, chunk := f.attr.Filesize, uint64(cp.chunk)
	f.pending.Store(int64((size+chunk-1)/chunk) + 1)
	for off := uint64(0); off < size; off += chunk {
		select {
		case cp.tasks <- chunkTask{f, off}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return cp.release(ctx, f)
}

// serveChunks copies chunks on c until the walk ends or ctx does.
func (cp *treeCopy) serveChunks(ctx context.Context, c *conn) error {
	buf := make([]byte, cp.chunk)
	for {
		var t chunkTask
		var ok bool
		select {
		case t, ok = <-cp.tasks:
			if !ok {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := cp.copyChunk(ctx, c, t, buf); err != nil {
			return err
		}
		if err := cp.release(ctx, t.f); err != nil {
			return err
		}
	}
}

func (cp *treeCopy) copyChunk(ctx context.Context, c *conn, t chunkTask, buf []byte) error {
	f := t.f
	buf = buf[:min(uint64(len(buf)), f.attr.Filesize-t.off)]
	n := 0
	for n < len(buf) {
		var got int
		var eof bool
		err := c.do(ctx, func(p procs) error {
			var err error
			got, eof, err = p.readInto(f.src, t.off+uint64(n), buf[n:])
			return err
		})
		if err != nil {
			return explain(cp.loc, "read", f.dir.join(f.name), err)
		}
		n += got
		if eof || got == 0 {
			break // shrunk since it was listed: the rest stays a hole
		}
	}
	for start := 0; start < n; {
		// Skip zero blocks, then write the run of data blocks after them.
		for start < n && isZero(buf[start:min(start+holeBlock, n)]) {
			start += holeBlock
		}
		end := start
		for end < n && !isZero(buf[end:min(end+holeBlock, n)]) {
			end += holeBlock
		}
		end = min(end, n)
		if start >= end {
			break
		}
		if err := cp.write(ctx, c, f, t.off+uint64(start), buf[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

func isZero(b []byte) bool { return bytes.Equal(b, zeros[:len(b)]) }

// write writes data at off, again for what a short write left.
func (cp *treeCopy) write(ctx context.Context, c *conn, f *fileCopy, off uint64, data []byte) error {
	for len(data) > 0 {
		var count uint32
		var verf uint64
		err := c.do(ctx, func(p procs) error {
			var err error
			count, verf, err = p.writeUnstable(f.dst, off, data)
			return err
		})
		if err == nil && count == 0 {
			err = fmt.Errorf("the server wrote nothing of %d bytes at offset %d", len(data), off)
		}
		if err != nil {
			return explain(cp.loc, "write the copy of", f.dir.join(f.name), err)
		}
		f.noteWrite(verf)
		off, data = off+uint64(count), data[min(int(count), len(data)):]
	}
	return nil
}

func (f *fileCopy) noteWrite(verf uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !f.wrote:
		f.wrote, f.verf = true, verf
	case verf != f.verf:
		f.lost = true
	}
}

// release counts one chunk (or the queueing) of f done, and hands f to the
// finishers after the last.
func (cp *treeCopy) release(ctx context.Context, f *fileCopy) error {
	if f.pending.Add(-1) > 0 {
		return nil
	}
	select {
	case cp.finished <- f:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// serveFinishes finishes files on c until no more can come or ctx ends.
func (cp *treeCopy) serveFinishes(ctx context.Context, c *conn) error {
	for {
		select {
		case f, ok := <-cp.finished:
			if !ok {
				return nil
			}
			if err := cp.finishFile(ctx, c, f); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// finishFile makes f's data durable, then gives it its attributes.
func (cp *treeCopy) finishFile(ctx context.Context, c *conn, f *fileCopy) error {
	f.mu.Lock()
	wrote, verf, lost := f.wrote, f.verf, f.lost
	f.mu.Unlock()
	if wrote {
		var committed uint64
		err := c.do(ctx, func(p procs) error {
			var err error
			committed, err = p.commit(f.dst)
			return err
		})
		if err == nil && (lost || committed != verf) {
			// The server restarted and may have dropped unstable writes.
			err = fmt.Errorf("the NFS server restarted during the copy and may have lost written data; copy again")
		}
		if err != nil {
			return explain(cp.loc, "commit the copy of", f.dir.join(f.name), err)
		}
	}
	if err := cp.setAttrs(ctx, c, f.dst, &f.attr, true); err != nil {
		return explain(cp.loc, "set attributes on the copy of", f.dir.join(f.name), err)
	}
	return nil
}

// setAttrs gives fh a's mode, owner and times (and size, for a file).
func (cp *treeCopy) setAttrs(ctx context.Context, c *conn, fh []byte, a *gonfs.Fattr, withSize bool) error {
	return c.do(ctx, func(p procs) error { return p.setattr(fh, copyAttrs(a, withSize)) })
}
