package nfs

import (
	"context"
	"fmt"
	"strings"

	gonfs "github.com/willscott/go-nfs-client/nfs"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// The walk is depth first over an explicit stack, so a tree of any depth
// costs one small frame per level and no goroutine stack. A frame keeps the
// rest of its directory's last listing while the walk is in a child, but
// only near the top: deeper frames drop it and list again from the cookie
// of the entry they stopped at, so memory stays bounded by
// keepListingDepth listings whatever the tree's shape.

const keepListingDepth = 16

// dirFrame is a directory being copied.
type dirFrame struct {
	src, dst []byte
	at       *pathNode
	attr     gonfs.Fattr // applied to dst once everything inside is made
	cookie   uint64      // where the next listing starts
	verf     uint64
	listing  []*gonfs.EntryPlus // entries listed and not yet copied
	eof      bool               // the listing ends the directory
}

func (cp *treeCopy) walk(ctx context.Context) error {
	stack := []*dirFrame{{src: cp.srcFH, dst: cp.dstFH, at: &pathNode{name: cp.src}, attr: cp.srcAttr}}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		top := stack[len(stack)-1]
		if len(top.listing) == 0 {
			if !top.eof {
				if err := cp.list(ctx, top); err != nil {
					return err
				}
				continue
			}
			// Last: making entries inside changed its times.
			stack[len(stack)-1] = nil
			stack = stack[:len(stack)-1]
			if err := cp.setAttrs(ctx, cp.meta, top.dst, &top.attr, false); err != nil {
				return explain(cp.loc, "set attributes on the copy of", top.at.join(""), err)
			}
			continue
		}
		e := top.listing[0]
		top.listing[0] = nil
		top.listing = top.listing[1:]
		top.cookie = e.Cookie
		child, err := cp.copyEntry(ctx, top, e)
		if err != nil {
			return err
		}
		if child != nil {
			if len(stack) >= keepListingDepth {
				top.listing, top.eof = nil, false
			}
			stack = append(stack, child)
		}
	}
	return nil
}

// list reads the next batch of f's source directory.
func (cp *treeCopy) list(ctx context.Context, f *dirFrame) error {
	err := cp.meta.do(ctx, func(p procs) error {
		var err error
		f.listing, f.cookie, f.verf, f.eof, err = p.readdirBatch(f.src, f.cookie, f.verf)
		return err
	})
	if hasStatus(err, gonfs.NFS3ErrBadCookie) {
		err = fmt.Errorf("the directory changed while it was being copied (%w); copy again", err)
	}
	if err != nil {
		return explain(cp.loc, "list", f.at.join(""), err)
	}
	return nil
}

func isReservedDir(name string) bool {
	return strings.EqualFold(name, ".stowage") || strings.EqualFold(name, backend.SnapshotsDir)
}

// copyEntry makes e of directory f in f's copy, and returns the frame to
// descend into when e is a directory.
func (cp *treeCopy) copyEntry(ctx context.Context, f *dirFrame, e *gonfs.EntryPlus) (*dirFrame, error) {
	name := e.FileName
	if name == "." || name == ".." {
		return nil, nil
	}
	if !e.Attr.IsSet || !e.Handle.IsSet {
		err := cp.meta.do(ctx, func(p procs) error {
			attr, fh, err := p.lookup(f.src, name)
			if err == nil {
				e.Attr.IsSet, e.Attr.Attr, e.Handle.IsSet, e.Handle.FH = true, *attr, true, fh
			}
			return err
		})
		if hasStatus(err, gonfs.NFS3ErrNoEnt) {
			return nil, nil // removed since it was listed
		}
		if err != nil {
			return nil, explain(cp.loc, "look up", f.at.join(name), err)
		}
	}
	attr, fh := &e.Attr.Attr, e.Handle.FH
	switch attr.Type {
	case gonfs.NF3Dir:
		return cp.copyDir(ctx, f, name, attr, fh)
	case gonfs.NF3Reg:
		return nil, cp.copyFile(ctx, f, name, attr, fh)
	case gonfs.NF3Lnk:
		return nil, cp.copySymlink(ctx, f, name, attr, fh)
	}
	klog.InfoS("Not copying a special file (FIFO, socket or device): NFS copies keep files, directories and links only",
		"share", cp.loc, "path", f.at.join(name), "type", attr.Type)
	return nil, nil
}

func (cp *treeCopy) copyDir(ctx context.Context, f *dirFrame, name string, attr *gonfs.Fattr, fh []byte) (*dirFrame, error) {
	switch {
	case isReservedDir(name):
		klog.InfoS("Not copying Stowage's reserved directory found inside a volume", "share", cp.loc, "path", f.at.join(name))
		return nil, nil
	case attr.FSID != cp.srcAttr.FSID:
		klog.InfoS("Not copying a directory of another filesystem mounted inside the volume", "share", cp.loc, "path", f.at.join(name))
		return nil, nil
	}
	var dst []byte
	err := cp.meta.do(ctx, func(p procs) error {
		var err error
		dst, err = p.mkdir(f.dst, name, 0o700) // its own mode once it is filled
		return err
	})
	if err != nil {
		return nil, explain(cp.loc, "make the copy of", f.at.join(name), err)
	}
	cp.files.Add(1)
	return &dirFrame{src: fh, dst: dst, at: &pathNode{parent: f.at, name: name}, attr: *attr}, nil
}

func (cp *treeCopy) copySymlink(ctx context.Context, f *dirFrame, name string, attr *gonfs.Fattr, fh []byte) error {
	err := cp.meta.do(ctx, func(p procs) error {
		target, err := p.readlink(fh)
		if err != nil {
			return err
		}
		a := copyAttrs(attr, false)
		a.Mode.SetIt = false // a link has no mode of its own
		lfh, err := p.symlink(f.dst, name, target, a)
		if err != nil {
			return err
		}
		// Owner and times again by handle: servers may ignore them at
		// creation, and a SETATTR on a link never reaches its target.
		return p.setattr(lfh, a)
	})
	if err != nil {
		return explain(cp.loc, "copy the symlink", f.at.join(name), err)
	}
	cp.files.Add(1)
	return nil
}

// copyFile makes a file's copy, or another link to the copy of a file
// already seen under another name, and queues its data.
func (cp *treeCopy) copyFile(ctx context.Context, f *dirFrame, name string, attr *gonfs.Fattr, fh []byte) error {
	if attr.Nlink > 1 {
		if first, ok := cp.links.take(attr.Fileid); ok {
			err := cp.meta.do(ctx, func(p procs) error { return p.link(first, f.dst, name) })
			if err != nil {
				return explain(cp.loc, "link the copy of", f.at.join(name), err)
			}
			cp.files.Add(1)
			return nil
		}
	}
	var dst []byte
	err := cp.meta.do(ctx, func(p procs) error {
		var err error
		dst, err = p.createNew(f.dst, name, gonfs.Sattr3{Mode: gonfs.SetMode{SetIt: true, Mode: 0o600}})
		return err
	})
	if err != nil {
		return explain(cp.loc, "make the copy of", f.at.join(name), err)
	}
	cp.files.Add(1)
	cp.bytes.Add(int64(attr.Filesize))
	if attr.Nlink > 1 {
		cp.links.add(attr.Fileid, dst, attr.Nlink-1)
	}
	return cp.queueFile(ctx, &fileCopy{src: fh, dst: dst, dir: f.at, name: name, attr: *attr})
}

// linkMap maps the file ID of a source file with more names than the one
// copied so far to its copy's handle, until all its names are seen.
type linkMap struct {
	m    map[uint64]*linkedCopy
	full bool
}

type linkedCopy struct {
	dst  []byte
	left uint32 // names still to link
}

// maxLinked bounds linkMap: past it, further hard-linked files are copied
// as separate files (their other names may lie outside the tree).
const maxLinked = 1 << 20

func (l *linkMap) add(fileid uint64, dst []byte, left uint32) {
	if l.m == nil {
		l.m = map[uint64]*linkedCopy{}
	}
	if len(l.m) >= maxLinked {
		if !l.full {
			l.full = true
			klog.InfoS("Too many hard-linked files in one copy; the rest are copied as separate files", "limit", maxLinked)
		}
		return
	}
	l.m[fileid] = &linkedCopy{dst: dst, left: left}
}

// take returns the copy to link to, forgetting it after its last name.
func (l *linkMap) take(fileid uint64) ([]byte, bool) {
	lc, ok := l.m[fileid]
	if !ok {
		return nil, false
	}
	if lc.left--; lc.left == 0 {
		delete(l.m, fileid)
	}
	return lc.dst, true
}
