package nfs

import (
	"fmt"
	"io"
	"os"

	gonfs "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	"github.com/willscott/go-nfs-client/nfs/xdr"
)

// The procedures a record needs, by file handle: a record is small enough to
// go in one WRITE and come back in one READ, so it is never opened by path
// through the library (which looks every component up again).

// createGuarded creates name in dir with perm and returns its handle; a
// name that exists already fails with NFS3ERR_EXIST instead of being reused.
func (p procs) createGuarded(dir []byte, name string, perm os.FileMode) ([]byte, error) {
	const guarded = 1 // createmode3 GUARDED: the mode goes in the same call
	type how struct {
		Mode  uint32
		Attrs gonfs.Sattr3
	}
	type args struct {
		rpc.Header
		Where gonfs.Diropargs3
		How   how
	}
	type resok struct {
		FH   gonfs.PostOpFH3
		Attr gonfs.PostOpAttr
	}
	res, err := p.call(&args{
		p.header(gonfs.NFSProc3Create),
		gonfs.Diropargs3{FH: dir, Filename: name},
		how{guarded, gonfs.Sattr3{Mode: gonfs.SetMode{SetIt: true, Mode: uint32(perm.Perm())}}},
	})
	if err != nil {
		return nil, err
	}
	var ok resok
	if err := xdr.Read(res, &ok); err != nil {
		return nil, &transportError{fmt.Errorf("decode CREATE reply: %w", err)}
	}
	if !ok.FH.IsSet {
		// The handle is optional in the reply; look it up instead.
		_, fh, err := p.lookup(dir, name)
		return fh, err
	}
	return ok.FH.FH, nil
}

// writeSync writes data at the start of fh and returns once the server has
// it on stable storage (FILE_SYNC: no COMMIT needed afterwards).
func (p procs) writeSync(fh, data []byte) error {
	const fileSync = 2
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
	res, err := p.call(&args{p.header(gonfs.NFSProc3Write), fh, 0, uint32(len(data)), fileSync, data})
	if err != nil {
		return err
	}
	var ok resok
	if err := xdr.Read(res, &ok); err != nil {
		return &transportError{fmt.Errorf("decode WRITE reply: %w", err)}
	}
	if int(ok.Count) != len(data) || ok.Committed != fileSync {
		// Never the case for a few hundred bytes on a sane server; say so
		// rather than keep a record that may be short or volatile.
		return fmt.Errorf("the server wrote %d of %d bytes with stability %d, not FILE_SYNC", ok.Count, len(data), ok.Committed)
	}
	return nil
}

// readSmall reads fh from the start until end of file, at most limit+1
// bytes (so that a caller can tell a file longer than limit).
func (p procs) readSmall(fh []byte, limit int) ([]byte, error) {
	type args struct {
		rpc.Header
		FH     []byte
		Offset uint64
		Count  uint32
	}
	type resok struct {
		Attr  gonfs.PostOpAttr
		Count uint32
		EOF   bool
		Data  []byte
	}
	var buf []byte
	for len(buf) <= limit {
		res, err := p.call(&args{p.header(gonfs.NFSProc3Read), fh, uint64(len(buf)), uint32(limit + 1 - len(buf))})
		if err != nil {
			return nil, err
		}
		var ok resok
		if err := xdr.Read(res, &ok); err != nil {
			return nil, &transportError{fmt.Errorf("decode READ reply: %w", err)}
		}
		buf = append(buf, ok.Data...)
		if ok.EOF {
			return buf, nil
		}
		if len(ok.Data) == 0 {
			return nil, fmt.Errorf("the server returned no data and no end of file: %w", io.ErrUnexpectedEOF)
		}
	}
	return buf, nil
}
