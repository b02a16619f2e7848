package driver_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/backend/nfs"
	"github.com/stowage-csi/stowage/pkg/driver"
)

// The NFS procedures one CreateVolume+DeleteVolume may send to the server,
// counted on the wire by a proxy in front of the NFS port. The floor (the
// userspace client's own Mkdir+RemoveAll) is 2: MKDIR and RMDIR. Each
// budget is what the call needs with the records directory's handle cached
// (pkg/backend/nfs/recordsdir.go); a change that adds round trips fails
// here, whatever the machine's speed.
const (
	createRPCBudget = 5 // LOOKUP record, LOOKUP dir (never adopt by name), FSSTAT (room), SYMLINK record, MKDIR
	deleteRPCBudget = 4 // LOOKUP+READLINK record, RMDIR, REMOVE record
)

func TestNFSCreateDeleteRoundTrips(t *testing.T) {
	server, share := os.Getenv("STOWAGE_TEST_NFS_SERVER"), os.Getenv("STOWAGE_TEST_NFS_SHARE")
	if server == "" || share == "" {
		t.Skip("needs a real NFS server: set STOWAGE_TEST_NFS_SERVER and STOWAGE_TEST_NFS_SHARE (test/nfs/ganesha.sh ensure prints them)")
	}
	mountPort := 20048
	if p := os.Getenv("STOWAGE_NFS_MNT_PORT"); p != "" {
		mountPort, _ = strconv.Atoi(p)
	}
	nfsPort := 2049
	if p := os.Getenv("STOWAGE_NFS_PORT"); p != "" {
		nfsPort, _ = strconv.Atoi(p)
	}
	px := startCountingProxy(t, net.JoinHostPort(server, strconv.Itoa(nfsPort)))
	pool := nfs.NewPool(nfs.Options{NFSPort: px.port(), MountPort: mountPort})
	t.Cleanup(func() { pool.Close() })
	d, err := driver.New(driver.Options{Name: "csi.stowage.io", Version: "test", Backends: []backend.Backend{nfs.NewBackend(pool, nil)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	params := map[string]string{"backend": "nfs", "server": server, "share": share}
	base := int64(os.Getpid())<<32 | time.Now().UnixNano()&0xffff<<16

	// The first pair connects and fills the caches; the second is the one
	// every later volume pays.
	var create, del map[string]int
	for i := int64(1); i <= 2; i++ {
		px.reset()
		resp, err := d.CreateVolume(ctx, createReq(base+i, params))
		if err != nil {
			t.Fatal(err)
		}
		create = px.reset()
		if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: resp.GetVolume().GetVolumeId()}); err != nil {
			t.Fatal(err)
		}
		del = px.reset()
	}
	t.Logf("CreateVolume: %d NFS calls %s", total(create), describe(create))
	t.Logf("DeleteVolume: %d NFS calls %s", total(del), describe(del))
	if total(create) > createRPCBudget {
		t.Errorf("CreateVolume sent %d NFS calls %s; at most %d are needed", total(create), describe(create), createRPCBudget)
	}
	if total(del) > deleteRPCBudget {
		t.Errorf("DeleteVolume sent %d NFS calls %s; at most %d are needed", total(del), describe(del), deleteRPCBudget)
	}
}

// countingProxy forwards TCP to the NFS server and counts the NFSv3
// procedures of the RPC calls it sees (RFC 5531 record marking).
type countingProxy struct {
	l      net.Listener
	target string

	mu     sync.Mutex
	counts map[string]int
	seq    []string // the procedures in the order sent, for the log
}

func startCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{l: l, target: target, counts: map[string]int{}}
	t.Cleanup(func() { l.Close() })
	go p.serve()
	return p
}

func (p *countingProxy) port() int { return p.l.Addr().(*net.TCPAddr).Port }

func (p *countingProxy) reset() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts
	if len(p.seq) > 0 {
		c["order: "+strings.Join(p.seq, " ")] = 0
	}
	p.counts, p.seq = map[string]int{}, nil
	return c
}

func (p *countingProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		go func() { _, _ = io.Copy(c, up); c.Close() }()
		go func() { p.countCalls(io.TeeReader(c, up)); up.Close() }()
	}
}

// countCalls reads record-marked RPC calls until the stream ends.
func (p *countingProxy) countCalls(r io.Reader) {
	first := true // the next fragment starts a record, and so a call header
	for {
		var mark [4]byte
		if _, err := io.ReadFull(r, mark[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(mark[:])
		last, size := n&0x80000000 != 0, int64(n&0x7fffffff)
		if first && size >= 24 {
			var h [24]byte // xid, type, rpcvers, prog, vers, proc
			if _, err := io.ReadFull(r, h[:]); err != nil {
				return
			}
			size -= 24
			if binary.BigEndian.Uint32(h[4:]) == 0 && binary.BigEndian.Uint32(h[12:]) == 100003 {
				p.mu.Lock()
				name := procName(binary.BigEndian.Uint32(h[20:]))
				p.counts[name]++
				p.seq = append(p.seq, name)
				p.mu.Unlock()
			}
		}
		if _, err := io.CopyN(io.Discard, r, size); err != nil {
			return
		}
		first = last
	}
}

var nfs3Procs = []string{"NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK", "READ", "WRITE",
	"CREATE", "MKDIR", "SYMLINK", "MKNOD", "REMOVE", "RMDIR", "RENAME", "LINK", "READDIR", "READDIRPLUS",
	"FSSTAT", "FSINFO", "PATHCONF", "COMMIT"}

func procName(n uint32) string {
	if int(n) < len(nfs3Procs) {
		return nfs3Procs[n]
	}
	return fmt.Sprintf("proc%d", n)
}

func total(m map[string]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

func describe(m map[string]int) string {
	var parts []string
	order := ""
	for k, v := range m {
		if strings.HasPrefix(k, "order: ") {
			order = "; " + k
			continue
		}
		parts = append(parts, fmt.Sprintf("%s×%d", k, v))
	}
	sort.Strings(parts)
	return "(" + strings.Join(parts, " ") + order + ")"
}
