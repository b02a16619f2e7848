package capacity

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// Labels on every object a publisher makes. The driver label is the one
// external-provisioner uses, so `kubectl get csistoragecapacities -l
// csi.storage.k8s.io/drivername=...` works as for other drivers; managed-by
// tells the controller's objects from each node plugin's, so that each
// instance only ever lists and changes its own.
const (
	LabelDriver    = "csi.storage.k8s.io/drivername"
	LabelManagedBy = "csi.storage.k8s.io/managed-by"
)

// byClass indexes our objects by storageClassName.
const byClass = "storageClass"

var everything = labels.Everything()

func indexByClass(obj any) ([]string, error) {
	if o, ok := obj.(*storagev1.CSIStorageCapacity); ok {
		return []string{o.StorageClassName}, nil
	}
	return nil, nil
}

// publisher is who publishes: the controller, or the node plugin of one node.
type publisher struct {
	driver string
	id     string // value of LabelManagedBy
	node   string // "" for the controller
}

func newPublisher(cfg Config) publisher {
	if cfg.Backend != volumeid.Local {
		return publisher{driver: cfg.DriverName, id: "stowage-controller"}
	}
	id := "stowage-node-" + cfg.NodeName
	if len(validation.IsValidLabelValue(id)) > 0 {
		// A node name may be up to 253 characters; a label value only 63.
		id = "stowage-node-" + shortHash(cfg.NodeName)
	}
	return publisher{driver: cfg.DriverName, id: id, node: cfg.NodeName}
}

func (w publisher) labels() map[string]string {
	return map[string]string{LabelDriver: w.driver, LabelManagedBy: w.id}
}

func (w publisher) selector() string { return labels.SelectorFromSet(w.labels()).String() }

// topology is the nodes that can use the storage: this node, or (NFS)
// every node, which an empty selector says.
func (w publisher) topology() *metav1.LabelSelector {
	if w.node == "" {
		return &metav1.LabelSelector{}
	}
	return &metav1.LabelSelector{MatchLabels: map[string]string{backend.TopologyKey: w.node}}
}

// name is the object's name for class: fixed, so that a restart, a new
// leader or two syncs racing with the informer find the same object rather
// than make a second one. Readable where it fits, unique by the hash.
func (w publisher) name(class string) string {
	base := class
	if w.node != "" {
		base += "-" + w.node
	}
	if len(base) > 52 {
		base = strings.TrimRight(base[:52], "-.")
	}
	return base + "-" + shortHash(w.driver+"\x00"+w.id+"\x00"+class)
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:5])
}

// desired is the object that says what class can still give, as reported
// by GetCapacity.
func (w publisher) desired(ns, class string, available int64, maxSize *int64, owner *metav1.OwnerReference) *storagev1.CSIStorageCapacity {
	o := &storagev1.CSIStorageCapacity{
		ObjectMeta: metav1.ObjectMeta{
			Name: w.name(class), Namespace: ns, Labels: w.labels(),
		},
		NodeTopology:     w.topology(),
		StorageClassName: class,
		Capacity:         resource.NewQuantity(available, resource.BinarySI),
	}
	if maxSize != nil {
		o.MaximumVolumeSize = resource.NewQuantity(*maxSize, resource.BinarySI)
	}
	if owner != nil {
		o.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return o
}

// apply copies what we publish from want onto have; false if nothing changed.
// Labels and owners that others added stay.
func apply(have, want *storagev1.CSIStorageCapacity) (*storagev1.CSIStorageCapacity, bool) {
	out := have.DeepCopy()
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	for k, v := range want.Labels {
		out.Labels[k] = v
	}
	for _, ref := range want.OwnerReferences {
		if !hasOwner(out.OwnerReferences, ref) {
			out.OwnerReferences = append(removeOwner(out.OwnerReferences, ref), ref)
		}
	}
	out.NodeTopology = want.NodeTopology
	out.Capacity = want.Capacity
	out.MaximumVolumeSize = want.MaximumVolumeSize
	return out, !equality.Semantic.DeepEqual(have, out)
}

func hasOwner(refs []metav1.OwnerReference, ref metav1.OwnerReference) bool {
	for _, r := range refs {
		if r.UID == ref.UID && r.Kind == ref.Kind && r.Name == ref.Name {
			return true
		}
	}
	return false
}

// removeOwner drops a reference to the same kind and name: the owner was
// recreated under a new UID, and the old one names nothing.
func removeOwner(refs []metav1.OwnerReference, ref metav1.OwnerReference) []metav1.OwnerReference {
	var out []metav1.OwnerReference
	for _, r := range refs {
		if r.Kind != ref.Kind || r.Name != ref.Name {
			out = append(out, r)
		}
	}
	return out
}

func describe(o *storagev1.CSIStorageCapacity) string {
	largest := "unknown"
	if o.MaximumVolumeSize != nil {
		largest = o.MaximumVolumeSize.String()
	}
	return fmt.Sprintf("capacity %s, maximum volume size %s", o.Capacity, largest)
}
