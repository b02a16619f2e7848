package nfs

import (
	"fmt"
	"io"
	"os"

	gonfs "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	"github.com/willscott/go-nfs-client/nfs/xdr"
)

// The library addresses everything by path from the root and hides its
// handle-based procedures. Working by file handle instead lets a traversal
// descend into exactly the directory it listed: an NFS LOOKUP never follows
// a symlink, and a symlink's handle is not a directory, so nothing here can be
// steered outside the tree it started in.

// fsstat is the FSSTAT3resok body after the status.
type fsstat struct {
	Attr     gonfs.PostOpAttr
	TBytes   uint64
	FBytes   uint64
	ABytes   uint64
	TFiles   uint64
	FFiles   uint64
	AFiles   uint64
	Invarsec uint32
}

// readdirplus counts: large enough that a typical volume lists in one call.
const (
	readdirDirCount = 8 << 10
	readdirMaxCount = 64 << 10
)

const nfsProcFSStat = 18

// procs issues NFSv3 procedures by handle over one Target's RPC client.
type procs struct {
	t    *gonfs.Target
	auth rpc.Auth
}

func (p procs) header(proc uint32) rpc.Header {
	return rpc.Header{
		Rpcvers: 2,
		Prog:    gonfs.Nfs3Prog,
		Vers:    gonfs.Nfs3Vers,
		Proc:    proc,
		Cred:    p.auth,
		Verf:    rpc.AuthNull,
	}
}

// call sends args and returns the reply positioned after an NFS3_OK status.
func (p procs) call(args any) (io.ReadSeeker, error) {
	res, err := p.t.Call(args)
	if err != nil {
		return nil, fromLibrary(err)
	}
	status, err := xdr.ReadUint32(res)
	if err != nil {
		return nil, &transportError{fmt.Errorf("read NFS status: %w", err)}
	}
	if err := gonfs.NFS3Error(status); err != nil {
		return nil, err
	}
	return res, nil
}

// lookup finds name in directory dir without following symlinks.
func (p procs) lookup(dir []byte, name string) (*gonfs.Fattr, []byte, error) {
	type args struct {
		rpc.Header
		What gonfs.Diropargs3
	}
	type resok struct {
		FH      []byte
		Attr    gonfs.PostOpAttr
		DirAttr gonfs.PostOpAttr
	}
	res, err := p.call(&args{p.header(gonfs.NFSProc3Lookup), gonfs.Diropargs3{FH: dir, Filename: name}})
	if err != nil {
		return nil, nil, err
	}
	var ok resok
	if err := xdr.Read(res, &ok); err != nil {
		return nil, nil, &transportError{fmt.Errorf("decode LOOKUP reply: %w", err)}
	}
	if !ok.Attr.IsSet {
		attr, err := p.getattr(ok.FH)
		if err != nil {
			return nil, nil, err
		}
		return attr, ok.FH, nil
	}
	return &ok.Attr.Attr, ok.FH, nil
}

func (p procs) getattr(fh []byte) (*gonfs.Fattr, error) {
	type args struct {
		rpc.Header
		FH []byte
	}
	res, err := p.call(&args{p.header(gonfs.NFSProc3GetAttr), fh})
	if err != nil {
		return nil, err
	}
	var attr gonfs.Fattr
	if err := xdr.Read(res, &attr); err != nil {
		return nil, &transportError{fmt.Errorf("decode GETATTR reply: %w", err)}
	}
	return &attr, nil
}

// mkdir creates name in dir with exactly perm and returns its handle.
func (p procs) mkdir(dir []byte, name string, perm os.FileMode) ([]byte, error) {
	type args struct {
		rpc.Header
		Where gonfs.Diropargs3
		Attrs gonfs.Sattr3
	}
	type resok struct {
		FH   gonfs.PostOpFH3
		Attr gonfs.PostOpAttr
	}
	res, err := p.call(&args{
		p.header(gonfs.NFSProc3Mkdir),
		gonfs.Diropargs3{FH: dir, Filename: name},
		gonfs.Sattr3{Mode: gonfs.SetMode{SetIt: true, Mode: uint32(perm.Perm())}},
	})
	if err != nil {
		return nil, err
	}
	var ok resok
	if err := xdr.Read(res, &ok); err != nil {
		return nil, &transportError{fmt.Errorf("decode MKDIR reply: %w", err)}
	}
	if !ok.FH.IsSet {
		// The handle is optional in the reply; look it up instead.
		_, fh, err := p.lookup(dir, name)
		return fh, err
	}
	return ok.FH.FH, nil
}

// remove unlinks a non-directory (a symlink is removed, not followed).
func (p procs) remove(dir []byte, name string) error {
	type args struct {
		rpc.Header
		Object gonfs.Diropargs3
	}
	_, err := p.call(&args{p.header(gonfs.NFSProc3Remove), gonfs.Diropargs3{FH: dir, Filename: name}})
	return err
}

// rmdir removes an empty directory.
func (p procs) rmdir(dir []byte, name string) error {
	type args struct {
		rpc.Header
		Object gonfs.Diropargs3
	}
	_, err := p.call(&args{p.header(gonfs.NFSProc3RmDir), gonfs.Diropargs3{FH: dir, Filename: name}})
	return err
}

func (p procs) rename(fromDir []byte, from string, toDir []byte, to string) error {
	type args struct {
		rpc.Header
		From gonfs.Diropargs3
		To   gonfs.Diropargs3
	}
	_, err := p.call(&args{
		p.header(gonfs.NFSProc3Rename),
		gonfs.Diropargs3{FH: fromDir, Filename: from},
		gonfs.Diropargs3{FH: toDir, Filename: to},
	})
	return err
}

// readdirBatch reads one READDIRPLUS reply of dir starting at cookie.
func (p procs) readdirBatch(dir []byte, cookie, verf uint64) (entries []*gonfs.EntryPlus, next, nextVerf uint64, eof bool, err error) {
	type args struct {
		rpc.Header
		FH         []byte
		Cookie     uint64
		CookieVerf uint64
		DirCount   uint32
		MaxCount   uint32
	}
	type head struct {
		DirAttr    gonfs.PostOpAttr
		CookieVerf uint64
	}
	type item struct {
		IsSet bool            `xdr:"union"`
		Entry gonfs.EntryPlus `xdr:"unioncase=1"`
	}
	res, err := p.call(&args{p.header(gonfs.NFSProc3ReadDirPlus), dir, cookie, verf, readdirDirCount, readdirMaxCount})
	if err != nil {
		return nil, 0, 0, false, err
	}
	var h head
	if err := xdr.Read(res, &h); err != nil {
		return nil, 0, 0, false, &transportError{fmt.Errorf("decode READDIRPLUS reply: %w", err)}
	}
	next = cookie
	for {
		var it item
		if err := xdr.Read(res, &it); err != nil {
			return nil, 0, 0, false, &transportError{fmt.Errorf("decode READDIRPLUS entry: %w", err)}
		}
		if !it.IsSet {
			break
		}
		e := it.Entry
		next = e.Cookie
		entries = append(entries, &e)
	}
	if err := xdr.Read(res, &eof); err != nil {
		return nil, 0, 0, false, &transportError{fmt.Errorf("decode READDIRPLUS eof: %w", err)}
	}
	return entries, next, h.CookieVerf, eof, nil
}

func (p procs) fsstat(fh []byte) (*fsstat, error) {
	type args struct {
		rpc.Header
		FH []byte
	}
	res, err := p.call(&args{p.header(nfsProcFSStat), fh})
	if err != nil {
		return nil, err
	}
	var st fsstat
	if err := xdr.Read(res, &st); err != nil {
		return nil, &transportError{fmt.Errorf("decode FSSTAT reply: %w", err)}
	}
	return &st, nil
}

// setattr sets attributes of fh unconditionally (no ctime guard).
func (p procs) setattr(fh []byte, attrs gonfs.Sattr3) error {
	type args struct {
		rpc.Header
		FH    []byte
		Attrs gonfs.Sattr3
		Guard uint32 // sattrguard3 with check = FALSE
	}
	_, err := p.call(&args{p.header(gonfs.NFSProc3SetAttr), fh, attrs, 0})
	return err
}
