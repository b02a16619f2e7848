package orphans

import (
	"sort"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowage-csi/stowage/pkg/driver"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

const drv = "csi.stowage.io"

func nfsClass(name, server, share string, extra ...string) *storagev1.StorageClass {
	p := map[string]string{"backend": "nfs", "server": server, "share": share}
	for i := 0; i+1 < len(extra); i += 2 {
		p[extra[i]] = extra[i+1]
	}
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: drv, Parameters: p}
}

func pvOf(id volumeid.ID, driverName string) *v1.PersistentVolume {
	return &v1.PersistentVolume{Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{
		CSI: &v1.CSIPersistentVolumeSource{Driver: driverName, VolumeHandle: id.String()}}}}
}

func TestFind(t *testing.T) {
	class := nfsClass("gold", "10.0.0.5", "/export")
	roots := NFSRoots(drv, []*storagev1.StorageClass{class})
	if len(roots) != 1 {
		t.Fatalf("roots = %v", roots)
	}
	root := roots[0]
	sum := driver.ParamsFingerprint(class.Parameters)
	now := time.Now()
	old := now.Add(-time.Hour)
	vol := func(name string, mod func(*driver.StoredVolume)) driver.StoredVolume {
		id := root.ID
		id.Dir, id.Name, id.OnDelete = name, name, "delete"
		v := driver.StoredVolume{ID: id, Name: name, Namespace: "team", Claim: "c-" + name, Created: old, Params: sum}
		if mod != nil {
			mod(&v)
		}
		return v
	}
	vols := []driver.StoredVolume{
		vol("pvc-orphan", nil),
		vol("pvc-bound", nil),
		vol("pvc-legacy-handle", nil), // its PV's handle has no name: still matched by directory
		vol("pvc-other-driver", nil),  // a PV of another driver does not count
		vol("pvc-retained", func(v *driver.StoredVolume) { v.Retained = true }),
		vol("pvc-filling", func(v *driver.StoredVolume) { v.Copying = true }),
		vol("pvc-young", func(v *driver.StoredVolume) { v.Created = now.Add(-time.Minute) }),
		vol("pvc-waiting", nil), // its claim still exists: the provisioner will retry
		vol("pvc-reused-claim-name", nil),
		vol("pvc-other-class", func(v *driver.StoredVolume) { v.Params = "another-installation" }),
		vol("pvc-old-version", func(v *driver.StoredVolume) { v.Params = "" }),
	}
	legacy := root.ID
	legacy.Dir = "pvc-legacy-handle"
	known := NewKnown(drv, []*v1.PersistentVolume{
		pvOf(vols[1].ID, drv), pvOf(legacy, drv), pvOf(vols[3].ID, "other.csi.io"),
	}, []*v1.PersistentVolumeClaim{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "c-pvc-waiting", UID: "waiting"}},
		// A new claim of the same name as the deleted one: another UID.
		{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "c-pvc-reused-claim-name", UID: "new-uid"}},
	})
	// pvc-waiting's record names the volume its claim gets.
	vols[7].Name = "pvc-waiting"
	known.Claims["team/c-pvc-waiting"] = "pvc-waiting"

	var got []string
	for _, o := range Find(root, vols, known, now, 10*time.Minute) {
		got = append(got, o.Volume.Name)
		if o.Class != "gold" || o.Age < 59*time.Minute {
			t.Errorf("%s: class %q, age %s", o.Volume.Name, o.Class, o.Age)
		}
	}
	sort.Strings(got)
	want := []string{"pvc-orphan", "pvc-other-driver", "pvc-reused-claim-name"}
	if len(got) != len(want) {
		t.Fatalf("orphans = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("orphans = %v, want %v", got, want)
		}
	}
}

func TestRoots(t *testing.T) {
	classes := []*storagev1.StorageClass{
		nfsClass("b", "10.0.0.5", "/export", "subDir", "b/${pv.name}"),
		nfsClass("a", "10.0.0.5", "/export"),
		nfsClass("other-share", "10.0.0.5", "/other"),
		nfsClass("broken", "", "/export"),
		{ObjectMeta: metav1.ObjectMeta{Name: "local"}, Provisioner: drv, Parameters: map[string]string{"backend": "local"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "foreign"}, Provisioner: "other.csi.io", Parameters: map[string]string{"backend": "nfs", "server": "x", "share": "/y"}},
	}
	roots := NFSRoots(drv, classes)
	if len(roots) != 2 || roots[0].ID.Share != "/export" || roots[1].ID.Share != "/other" {
		t.Fatalf("roots = %+v", roots)
	}
	if n := len(roots[0].Classes); n != 2 {
		t.Errorf("/export has %d classes, want 2 (a and b)", n)
	}
	if name := roots[0].Classes[driver.ParamsFingerprint(classes[1].Parameters)]; name != "a" {
		t.Errorf("class a's fingerprint names %q", name)
	}
	local, ok := LocalRoot(drv, "n1", classes)
	if !ok || local.ID.Node != "n1" || len(local.Classes) != 1 {
		t.Errorf("local root = %+v, %v", local, ok)
	}
	if _, ok := LocalRoot(drv, "n1", classes[:4]); ok {
		t.Error("a local root without local classes")
	}
}
