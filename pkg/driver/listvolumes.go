package driver

import (
	"context"
	"sort"
	"strconv"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// StoredVolume is a volume as its record on a root describes it: what
// ListVolumes answers and what the orphan reconciler (pkg/orphans) compares
// with the PVs. Snapshots and inline ephemeral volumes have records too, but
// they are not volumes and are never StoredVolumes.
type StoredVolume struct {
	// ID is the handle rebuilt from the record, which DeleteVolume accepts:
	// the record names the directory, the handle names the record.
	ID        volumeid.ID
	Name      string // the CSI name: the PV's name for a provisioned volume
	Namespace string // of the claim it was made for; empty for a bare CSI call
	Claim     string
	Capacity  int64
	Created   time.Time
	// Retained marks the kept directory of a deleted volume (onDelete=retain
	// or an archive): no longer a CSI volume.
	Retained bool
	// Params fingerprints the class parameters the volume was made with
	// (see ParamsFingerprint); empty for records of earlier versions.
	Params string
	// Copying is set while a restore or clone still fills the volume: its
	// CreateVolume has not answered yet, so no PV can exist.
	Copying bool
	// Misplaced is set when the record was found under another file name
	// than its directory's: the records directory was tampered with.
	Misplaced bool
	source    string
}

// ParamsFingerprint is what a volume's record keeps of the class parameters
// it was made with; the provisioner passes a class's parameters unchanged
// (plus per-claim keys that are left out), so a class and the volumes made
// from it have the same fingerprint.
func ParamsFingerprint(classParameters map[string]string) string {
	return fingerprint(classParameters)
}

// StoredVolumes reads the records on root (a volume ID without a
// directory: a node's base path or an NFS share) and returns its volumes.
func (d *Driver) StoredVolumes(ctx context.Context, root volumeid.ID) ([]StoredVolume, error) {
	root = volumeid.ID{Backend: root.Backend, Server: root.Server, Share: root.Share, Node: root.Node}
	store, err := d.store(ctx, root)
	if err != nil {
		return nil, err
	}
	names, err := store.ListRecords(ctx)
	if err != nil {
		return nil, storeError(err, "list the records on %s", root.Where())
	}
	var out []StoredVolume
	for _, n := range names {
		if !isRecordName(n) {
			continue
		}
		rec, err := readRecordFile(ctx, store, n)
		if err != nil {
			return nil, storeError(err, "read record %s on %s", n, root.Where())
		}
		if rec == nil || isSnapshotRecord(rec) || rec.Pod != "" || volumeid.ValidateDir(rec.Dir) != nil {
			continue // gone meanwhile, or not a volume
		}
		id := root
		id.Dir, id.Name, id.OnDelete = rec.Dir, volumeid.NameToken(rec.Name), rec.OnDelete
		out = append(out, StoredVolume{ID: id, Name: rec.Name, Namespace: rec.Namespace, Claim: rec.Claim,
			Capacity: rec.Capacity, Created: rec.Created, Retained: rec.Retained, Params: rec.Params,
			Copying: rec.Copying, Misplaced: recordName(rec.Dir) != n, source: rec.Source})
	}
	return out, nil
}

// servedRoots are the roots this instance lists without being told which:
// those it has made volumes on since it started (the driver reads no
// StorageClasses), and on a node its own base path.
func (d *Driver) servedRoots() []volumeid.ID {
	all := d.roots.all()
	if _, ok := d.backends[volumeid.Local]; ok && d.isNode() {
		all = append(all, volumeid.ID{Backend: volumeid.Local, Node: d.opts.NodeID})
	}
	seen := map[string]bool{}
	var out []volumeid.ID
	for _, root := range all {
		if seen[root.Where()] || (root.Backend == volumeid.Local && root.Node != d.opts.NodeID) {
			continue // another node's volumes are listed by its own plugin
		}
		seen[root.Where()] = true
		out = append(out, root)
	}
	return out
}

func (d *Driver) ListVolumes(ctx context.Context, req *csi.ListVolumesRequest) (*csi.ListVolumesResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, status.Error(codes.InvalidArgument, "max_entries is negative")
	}
	vols, err := d.servedVolumes(ctx)
	if err != nil {
		return nil, err
	}
	start, end, next, err := pageBounds(len(vols), req.GetStartingToken(), int(req.GetMaxEntries()))
	if err != nil {
		return nil, err
	}
	resp := &csi.ListVolumesResponse{NextToken: next}
	for _, v := range vols[start:end] {
		// Status.PublishedNodeIds stays empty: Stowage keeps no attach
		// state (see ControllerGetVolume). Whether the storage agrees with
		// the record is ControllerListVolumeHealth's answer.
		resp.Entries = append(resp.Entries, &csi.ListVolumesResponse_Entry{
			Volume: d.listedVolume(v),
			Status: &csi.ListVolumesResponse_VolumeStatus{},
		})
	}
	return resp, nil
}

// servedVolumes lists the volumes on servedRoots, retained ones left out
// (DeleteVolume has been called for them), in a stable order for paging.
func (d *Driver) servedVolumes(ctx context.Context) ([]StoredVolume, error) {
	var vols []StoredVolume
	for _, root := range d.servedRoots() {
		more, err := d.StoredVolumes(ctx, root)
		if err != nil {
			return nil, err
		}
		for _, v := range more {
			if !v.Retained {
				vols = append(vols, v)
			}
		}
	}
	sort.Slice(vols, func(i, j int) bool { return vols[i].ID.String() < vols[j].ID.String() })
	return vols, nil
}

// pageBounds cuts one page out of n entries; the token is the index of the
// page's first entry, as in ListSnapshots.
func pageBounds(n int, token string, max int) (start, end int, next string, err error) {
	if token != "" {
		start, err = strconv.Atoi(token)
		if err != nil || start < 0 || start > n {
			return 0, 0, "", status.Errorf(codes.Aborted, "starting_token %q is not one this list gave (or the list shrank below it); list again from the start", token)
		}
	}
	end = n
	if max > 0 && start+max < end {
		end = start + max
	}
	if end < n {
		next = strconv.Itoa(end)
	}
	return start, end, next, nil
}

// listedVolume is a stored volume as CSI describes it. Only what the record
// knows is filled in: the access modes a volume was made for live in its PV.
func (d *Driver) listedVolume(v StoredVolume) *csi.Volume {
	vol := &csi.Volume{
		VolumeId:      v.ID.String(),
		CapacityBytes: v.Capacity,
		VolumeContext: map[string]string{ContextBackend: v.ID.Backend},
	}
	if b, ok := d.backends[v.ID.Backend]; ok {
		vol.AccessibleTopology = b.Topology(v.ID)
	}
	if v.source != "" {
		if snap, err := volumeid.ParseSnapshot(v.source); err == nil {
			vol.ContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
				Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snap.String()}}}
		} else {
			vol.ContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
				Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: v.source}}}
		}
	}
	return vol
}
