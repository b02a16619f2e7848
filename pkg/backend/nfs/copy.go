package nfs

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	gonfs "github.com/willscott/go-nfs-client/nfs"
	"golang.org/x/sync/errgroup"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// A tree copy (snapshots, restores, clones) runs entirely through the
// userspace client, by file handle: one walker lists the source with
// READDIRPLUS and makes directories, files and links in the destination,
// while a few data connections stream file contents as READ/WRITE pairs of
// the server's largest transfer size. Each connection still runs one
// procedure at a time (see the package comment); the parallelism comes from
// several private connections, dialled for the copy and closed after it, so
// a long copy never queues the controller's other calls behind it.

// copyDataConns is how many connections carry file data at once, and
// copyFinishConns how many COMMIT and set the attributes of finished files.
// A COMMIT is an fsync on the server, mostly waiting for the disk, and
// concurrent ones share the filesystem's journal commits, so many of them
// in flight on connections apart from the data keeps the data streaming
// (BenchmarkCopyTree, test/bench/snapshot/nfs.sh).
var copyDataConns, copyFinishConns = 4, 8

// maxCopyChunk caps one READ/WRITE even if the server allows more, to bound
// the memory of a copy (each data connection holds a chunk or three).
const maxCopyChunk = 1 << 20

var _ backend.Copier = (*store)(nil)

// CopyTree copies everything inside src into dst, an existing empty
// directory of the same share, and gives dst src's mode, owner and times.
// See backend.Copier for the contract; what the NFS store keeps: mode,
// owner, atime/mtime, hard links, symlinks (as links) and holes (all-zero
// blocks are not written). Extended attributes and ACLs are not part of
// NFSv3 and are not copied. FIFOs, sockets and devices are skipped and
// logged; directories of another filesystem and directories named
// .stowage or .stowage-snapshots are not entered.
func (s *store) CopyTree(ctx context.Context, src, dst string) (backend.CopyResult, error) {
	for _, d := range []string{src, dst} {
		if err := validateCopyDir(d); err != nil {
			return backend.CopyResult{}, err
		}
	}
	if src == dst || strings.HasPrefix(dst, src+"/") || strings.HasPrefix(src, dst+"/") {
		return backend.CopyResult{}, fmt.Errorf("copy %q into %q on %s: one is inside the other; copy into a directory apart from the source", src, dst, s.ep.loc)
	}
	cp, err := openTreeCopy(ctx, s.ep, src, dst)
	if err != nil {
		return backend.CopyResult{}, err
	}
	defer cp.close()
	return cp.run(ctx)
}

// validateCopyDir accepts a volume directory or a snapshot's directory
// under the reserved .stowage-snapshots.
func validateCopyDir(dir string) error { return volumeid.ValidateStoreDir(dir) }

// treeCopy is one CopyTree call.
type treeCopy struct {
	ep       *endpoint
	loc      string
	src, dst string  // as given, for messages
	meta     *conn   // the walker's: listings, directories, links
	data     []*conn // file contents
	finish   []*conn // COMMIT and attributes of files
	chunk    int     // bytes per READ/WRITE

	tasks    chan chunkTask // walker -> data connections
	finished chan *fileCopy // walker and data connections -> finishers

	srcAttr      gonfs.Fattr
	srcFH, dstFH []byte

	files, bytes atomic.Int64
	links        linkMap // walker only
}

// openTreeCopy dials the copy's connections and looks up both ends.
func openTreeCopy(ctx context.Context, ep *endpoint, src, dst string) (*treeCopy, error) {
	cp := &treeCopy{ep: ep, loc: ep.loc, src: src, dst: dst}
	conns, err := takeCopyConns(ctx, ep, 1+copyDataConns+copyFinishConns)
	if err != nil {
		return nil, fmt.Errorf("open connections for copying %q on %s: %w", src, ep.loc, err)
	}
	cp.meta, cp.data, cp.finish = conns[0], conns[1:1+copyDataConns], conns[1+copyDataConns:]
	if err := cp.lookUpEnds(ctx); err != nil {
		cp.close()
		return nil, err
	}
	return cp, nil
}

func (cp *treeCopy) lookUpEnds(ctx context.Context) error {
	c := cp.meta
	var srcAttr, dstAttr *gonfs.Fattr
	var info *gonfs.FSInfo
	if err := c.do(ctx, func(p procs) error {
		var err error
		srcAttr, cp.srcFH, err = walk(p, c.root, cp.src)
		return err
	}); err != nil {
		return explain(cp.loc, "look up the copy's source", cp.src, err)
	}
	if !srcAttr.IsDir() {
		return explain(cp.loc, "copy", cp.src, &notDirError{rel: cp.src, kind: srcAttr.Type})
	}
	if err := c.do(ctx, func(p procs) error {
		var err error
		dstAttr, cp.dstFH, err = walk(p, c.root, cp.dst)
		return err
	}); err != nil {
		return explain(cp.loc, "look up the copy's destination", cp.dst, err)
	}
	if !dstAttr.IsDir() {
		return explain(cp.loc, "copy into", cp.dst, &notDirError{rel: cp.dst, kind: dstAttr.Type})
	}
	if err := c.do(ctx, func(p procs) error {
		var err error
		info, err = p.fsinfo(c.root)
		return err
	}); err != nil {
		return explain(cp.loc, "fsinfo", "/", err)
	}
	cp.srcAttr, cp.chunk = *srcAttr, transferSize(info)
	return nil
}

// transferSize is the largest READ and WRITE the server takes, capped.
func transferSize(info *gonfs.FSInfo) int {
	n := min(info.RTMax, info.WTMax, maxCopyChunk)
	if n < 4096 {
		n = 4096 // a server that leaves the fields 0 still takes a page
	}
	return int(n)
}

// close hands the connections back for the next copy.
func (cp *treeCopy) close() {
	putCopyConns(cp.ep, append(append([]*conn{cp.meta}, cp.data...), cp.finish...))
}

// run walks the tree while the data connections drain its chunks and the
// finishers its files; the first error stops them all.
func (cp *treeCopy) run(ctx context.Context) (backend.CopyResult, error) {
	g, gctx := errgroup.WithContext(ctx)
	cp.tasks = make(chan chunkTask, 2*len(cp.data))
	cp.finished = make(chan *fileCopy, 4*len(cp.finish))
	var feeders sync.WaitGroup // who may still send on finished
	for _, c := range cp.data {
		feeders.Add(1)
		g.Go(func() error {
			defer feeders.Done()
			return cp.serveChunks(gctx, c)
		})
	}
	feeders.Add(1)
	g.Go(func() error {
		defer feeders.Done()
		defer close(cp.tasks)
		return cp.walk(gctx)
	})
	for _, c := range cp.finish {
		g.Go(func() error { return cp.serveFinishes(gctx, c) })
	}
	go func() {
		feeders.Wait()
		close(cp.finished)
	}()
	err := g.Wait()
	if err == nil {
		err = ctx.Err() // a cancel that raced the last chunk still fails the copy
	}
	res := backend.CopyResult{Files: cp.files.Load(), Bytes: cp.bytes.Load()}
	if err != nil && ctx.Err() != nil {
		return res, fmt.Errorf("copy %q into %q on %s stopped: %w", cp.src, cp.dst, cp.loc, ctx.Err())
	}
	return res, err
}

// pathNode names an entry by its parent, so that a deep tree holds one
// name per level instead of a full path per entry; a path is built only
// for a message.
type pathNode struct {
	parent *pathNode
	name   string
}

func (n *pathNode) join(name string) string {
	parts := []string{name}
	for ; n != nil; n = n.parent {
		parts = append(parts, n.name)
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteString(parts[i])
		if i > 0 {
			b.WriteByte('/')
		}
	}
	return b.String()
}

// copyAttrs are the attributes of a that a copy keeps; size only for
// regular files (it makes a trailing hole).
func copyAttrs(a *gonfs.Fattr, withSize bool) gonfs.Sattr3 {
	at := func(t gonfs.NFS3Time) gonfs.SetTime { return gonfs.SetTime{SetIt: gonfs.SetToClientTime, Time: t} }
	s := gonfs.Sattr3{
		Mode:  gonfs.SetMode{SetIt: true, Mode: a.FileMode & 0o7777},
		UID:   gonfs.SetUID{SetIt: true, UID: a.UID},
		GID:   gonfs.SetUID{SetIt: true, UID: a.GID},
		Atime: at(a.Atime),
		Mtime: at(a.Mtime),
	}
	if withSize {
		s.Size = gonfs.SetSize{SetIt: true, Size: a.Filesize}
	}
	return s
}
