package nfs

import (
	"fmt"
	"io"

	gonfs "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	"github.com/willscott/go-nfs-client/nfs/xdr"
)

// The procedures a record needs, by file handle (the library would look
// every path component up again). A record is the target of a symbolic link:
// one SYMLINK writes it whole, one READLINK reads it. Records that earlier
// versions wrote as regular files are read with one READ.

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

// symlinkRecord creates name in dir as a symbolic link to target, contents
// and all in one call, without asking for its handle; an existing name
// fails with NFS3ERR_EXIST. (readlink is in copyproc.go.)
func (p procs) symlinkRecord(dir []byte, name, target string) error {
	type args struct {
		rpc.Header
		Where  gonfs.Diropargs3
		Attrs  gonfs.Sattr3
		Target string
	}
	_, err := p.call(&args{p.header(gonfs.NFSProc3Symlink), gonfs.Diropargs3{FH: dir, Filename: name}, gonfs.Sattr3{}, target})
	return err
}
