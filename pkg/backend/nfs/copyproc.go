package nfs

import (
	"fmt"
	"io"

	gonfs "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	"github.com/willscott/go-nfs-client/nfs/xdr"
)

// The procedures a tree copy needs beyond proc.go's, all by file handle.

const (
	nfsProcLink = 15 // the library names no constant for LINK

	stableUnstable = 0 // stable_how UNSTABLE: COMMIT makes it durable
)

// fsinfo asks the server for its transfer sizes.
func (p procs) fsinfo(root []byte) (*gonfs.FSInfo, error) {
	type args struct {
		rpc.Header
		FH []byte
	}
	res, err := p.call(&args{p.header(gonfs.NFSProc3FSInfo), root})
	if err != nil {
		return nil, err
	}
	var info gonfs.FSInfo
	if err := xdr.Read(res, &info); err != nil {
		return nil, &transportError{fmt.Errorf("decode FSINFO reply: %w", err)}
	}
	return &info, nil
}

// createNew creates the regular file name in dir with attrs; a
// name that exists already fails with NFS3ERR_EXIST (GUARDED), since a copy
// only ever fills an empty directory.
func (p procs) createNew(dir []byte, name string, attrs gonfs.Sattr3) ([]byte, error) {
	const guarded = 1
	type how struct {
		Mode  uint32
		Attrs gonfs.Sattr3
	}
	type args struct {
		rpc.Header
		Where gonfs.Diropargs3
		How   how
	}
	res, err := p.call(&args{p.header(gonfs.NFSProc3Create), gonfs.Diropargs3{FH: dir, Filename: name}, how{guarded, attrs}})
	if err != nil {
		return nil, err
	}
	return p.madeHandle(res, dir, name, "CREATE")
}

// madeHandle reads the post_op_fh3 at the start of a CREATE, MKDIR or
// SYMLINK reply, looking name up when the server left it out.
func (p procs) madeHandle(res io.Reader, dir []byte, name, op string) ([]byte, error) {
	var fh gonfs.PostOpFH3
	if err := xdr.Read(res, &fh); err != nil {
		return nil, &transportError{fmt.Errorf("decode %s reply: %w", op, err)}
	}
	if fh.IsSet {
		return fh.FH, nil
	}
	_, h, err := p.lookup(dir, name)
	return h, err
}

// readInto reads up to len(buf) bytes of fh at off straight into buf.
func (p procs) readInto(fh []byte, off uint64, buf []byte) (n int, eof bool, err error) {
	type args struct {
		rpc.Header
		FH     []byte
		Offset uint64
		Count  uint32
	}
	type resok struct {
		Attr   gonfs.PostOpAttr
		Count  uint32
		EOF    bool
		Length uint32 // of the opaque data that follows
	}
	res, err := p.call(&args{p.header(gonfs.NFSProc3Read), fh, off, uint32(len(buf))})
	if err != nil {
		return 0, false, err
	}
	var ok resok
	if err := xdr.Read(res, &ok); err != nil {
		return 0, false, &transportError{fmt.Errorf("decode READ reply: %w", err)}
	}
	if int(ok.Length) > len(buf) {
		return 0, false, &transportError{fmt.Errorf("READ returned %d bytes for a request of %d", ok.Length, len(buf))}
	}
	if _, err := io.ReadFull(res, buf[:ok.Length]); err != nil {
		return 0, false, &transportError{fmt.Errorf("read READ data: %w", err)}
	}
	return int(ok.Length), ok.EOF, nil
}

// writeUnstable writes data to fh at off without waiting for stable
// storage, and returns how much the server took and its write verifier.
func (p procs) writeUnstable(fh []byte, off uint64, data []byte) (count uint32, verf uint64, err error) {
	type args struct {
		rpc.Header
		FH       []byte
		Offset   uint64
		Count    uint32
		Stable   uint32
		Contents []byte
	}
	type resok struct {
		Wcc       gonfs.WccData
		Count     uint32
		Committed uint32
		Verf      uint64
	}
	res, err := p.call(&args{p.header(gonfs.NFSProc3Write), fh, off, uint32(len(data)), stableUnstable, data})
	if err != nil {
		return 0, 0, err
	}
	var ok resok
	if err := xdr.Read(res, &ok); err != nil {
		return 0, 0, &transportError{fmt.Errorf("decode WRITE reply: %w", err)}
	}
	return ok.Count, ok.Verf, nil
}

// commit makes every unstable write to fh durable and returns the write
// verifier, which differs from the writes' if the server lost them (a
// restart in between).
func (p procs) commit(fh []byte) (uint64, error) {
	type args struct {
		rpc.Header
		FH     []byte
		Offset uint64
		Count  uint32 // 0: the whole file
	}
	type resok struct {
		Wcc  gonfs.WccData
		Verf uint64
	}
	res, err := p.call(&args{p.header(gonfs.NFSProc3Commit), fh, 0, 0})
	if err != nil {
		return 0, err
	}
	var ok resok
	if err := xdr.Read(res, &ok); err != nil {
		return 0, &transportError{fmt.Errorf("decode COMMIT reply: %w", err)}
	}
	return ok.Verf, nil
}

// readlink returns a symlink's target as stored, never resolving it.
func (p procs) readlink(fh []byte) (string, error) {
	type args struct {
		rpc.Header
		FH []byte
	}
	type resok struct {
		Attr   gonfs.PostOpAttr
		Target string
	}
	res, err := p.call(&args{p.header(gonfs.NFSProc3Readlink), fh})
	if err != nil {
		return "", err
	}
	var ok resok
	if err := xdr.Read(res, &ok); err != nil {
		return "", &transportError{fmt.Errorf("decode READLINK reply: %w", err)}
	}
	return ok.Target, nil
}

// symlink makes name in dir a symlink to target with attrs and returns its
// handle.
func (p procs) symlink(dir []byte, name, target string, attrs gonfs.Sattr3) ([]byte, error) {
	type args struct {
		rpc.Header
		Where  gonfs.Diropargs3
		Attrs  gonfs.Sattr3
		Target string
	}
	res, err := p.call(&args{p.header(gonfs.NFSProc3Symlink), gonfs.Diropargs3{FH: dir, Filename: name}, attrs, target})
	if err != nil {
		return nil, err
	}
	return p.madeHandle(res, dir, name, "SYMLINK")
}

// link makes name in dir another name of the file fh.
func (p procs) link(fh, dir []byte, name string) error {
	type args struct {
		rpc.Header
		FH   []byte
		Link gonfs.Diropargs3
	}
	_, err := p.call(&args{p.header(nfsProcLink), fh, gonfs.Diropargs3{FH: dir, Filename: name}})
	return err
}
