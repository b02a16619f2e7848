package driver

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// roots remembers the roots (a node's base path, NFS shares) this instance
// has made volumes or snapshots on: ListSnapshots without a filter lists
// those, since shares are named only by StorageClasses, which the driver
// does not read.
type roots struct {
	mu   sync.Mutex
	seen map[string]volumeid.ID
}

func (r *roots) add(id volumeid.ID) {
	root := volumeid.ID{Backend: id.Backend, Server: id.Server, Share: id.Share, Node: id.Node}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]volumeid.ID{}
	}
	r.seen[root.Where()] = root
}

func (r *roots) all() []volumeid.ID {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []volumeid.ID
	for _, id := range r.seen {
		out = append(out, id)
	}
	return out
}

func (d *Driver) ListSnapshots(ctx context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, status.Error(codes.InvalidArgument, "max_entries is negative")
	}
	var list []*csi.Snapshot
	var err error
	switch {
	case req.GetSnapshotId() != "":
		list, err = d.listOne(ctx, req.GetSnapshotId())
	case req.GetSourceVolumeId() != "":
		src, perr := volumeid.Parse(req.GetSourceVolumeId())
		if perr != nil {
			return &csi.ListSnapshotsResponse{}, nil // no snapshot of a volume that is not Stowage's
		}
		list, err = d.listRoot(ctx, src, src.String())
	default:
		roots := d.roots.all()
		if d.isNode() {
			if _, ok := d.backends[volumeid.Local]; ok {
				roots = append(roots, volumeid.ID{Backend: volumeid.Local, Node: d.opts.NodeID})
			}
		}
		seen := map[string]bool{}
		for _, root := range roots {
			if seen[root.Where()] {
				continue
			}
			seen[root.Where()] = true
			more, lerr := d.listRoot(ctx, root, "")
			if lerr != nil {
				return nil, lerr
			}
			list = append(list, more...)
		}
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(list, func(i, j int) bool { return list[i].SnapshotId < list[j].SnapshotId })
	return page(list, req.GetStartingToken(), int(req.GetMaxEntries()))
}

// page cuts one page out of list; the token is the index of its first entry.
func page(list []*csi.Snapshot, token string, max int) (*csi.ListSnapshotsResponse, error) {
	start := 0
	if token != "" {
		n, err := strconv.Atoi(token)
		if err != nil || n < 0 || n > len(list) {
			return nil, status.Errorf(codes.Aborted, "starting_token %q is not one ListSnapshots gave; list again from the start", token)
		}
		start = n
	}
	end := len(list)
	if max > 0 && start+max < end {
		end = start + max
	}
	resp := &csi.ListSnapshotsResponse{}
	for _, s := range list[start:end] {
		resp.Entries = append(resp.Entries, &csi.ListSnapshotsResponse_Entry{Snapshot: s})
	}
	if end < len(list) {
		resp.NextToken = strconv.Itoa(end)
	}
	return resp, nil
}

// listOne finds one snapshot by ID; an unknown or foreign ID lists nothing.
func (d *Driver) listOne(ctx context.Context, id string) ([]*csi.Snapshot, error) {
	snap, err := volumeid.ParseSnapshot(id)
	if err != nil {
		return nil, nil
	}
	if _, err := d.backend(snap.Backend); err != nil {
		return nil, nil
	}
	store, err := d.store(ctx, snap.Root())
	if err != nil {
		return nil, err
	}
	rec, err := readRecord(ctx, store, snap.Dir())
	if err != nil {
		return nil, storeError(err, "read the record of snapshot %s", snap)
	}
	if rec == nil || volumeid.NameToken(rec.Name) != snap.Name {
		return nil, nil
	}
	return []*csi.Snapshot{snapshotOf(snap, rec)}, nil
}

// listRoot lists the snapshots on the root of id (of source, if set).
func (d *Driver) listRoot(ctx context.Context, id volumeid.ID, source string) ([]*csi.Snapshot, error) {
	if _, err := d.backend(id.Backend); err != nil {
		return nil, nil
	}
	if id.Backend == volumeid.Local && id.Node != d.opts.NodeID {
		return nil, nil // another node's: listed by its own plugin
	}
	store, err := d.store(ctx, id)
	if err != nil {
		return nil, err
	}
	recs, err := allRecords(ctx, store)
	if err != nil {
		return nil, storeError(err, "read the records on %s", id.Where())
	}
	var out []*csi.Snapshot
	for _, rec := range recs {
		if !isSnapshotRecord(rec) || (source != "" && rec.Source != source) {
			continue
		}
		snap := volumeid.Snapshot{Backend: id.Backend, Server: id.Server, Share: id.Share, Node: id.Node,
			Name: strings.TrimPrefix(rec.Dir, volumeid.SnapshotsDir+"/")}
		out = append(out, snapshotOf(snap, rec))
	}
	return out, nil
}

func isSnapshotRecord(r *record) bool {
	return strings.HasPrefix(r.Dir, volumeid.SnapshotsDir+"/")
}

func snapshotOf(snap volumeid.Snapshot, rec *record) *csi.Snapshot {
	return &csi.Snapshot{SnapshotId: snap.String(), SourceVolumeId: rec.Source, SizeBytes: rec.Capacity,
		CreationTime: timestamppb.New(rec.Created), ReadyToUse: !rec.Copying}
}
