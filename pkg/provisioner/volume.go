package provisioner

import (
	"fmt"
	"slices"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v10/controller"
)

// buildPV describes the volume the driver made as a PV for the claim. The
// library adds the claimRef, the provisioned-by annotation, the class name
// and its deletion finalizer.
func buildPV(driverName string, opts controller.ProvisionOptions, req *csi.CreateVolumeRequest,
	vol *csi.Volume, policy v1.PersistentVolumeReclaimPolicy) *v1.PersistentVolume {
	claim := opts.PVC
	// Report what the backend provided, not what was asked: that is what the
	// user gets, and the PV controller binds only if it covers the request.
	capacity := vol.GetCapacityBytes()
	if capacity <= 0 {
		capacity = req.GetCapacityRange().GetRequiredBytes()
	}
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: opts.PVName},
		Spec: v1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: policy,
			AccessModes:                   slices.Clone(claim.Spec.AccessModes),
			MountOptions:                  slices.Clone(opts.StorageClass.MountOptions),
			VolumeMode:                    claim.Spec.VolumeMode,
			Capacity:                      v1.ResourceList{v1.ResourceStorage: *resource.NewQuantity(capacity, resource.BinarySI)},
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{
				Driver:           driverName,
				VolumeHandle:     vol.GetVolumeId(),
				VolumeAttributes: vol.GetVolumeContext(),
				// kubelet passes this on to NodePublish: a claim that can
				// only read gets a volume no pod can write to.
				ReadOnly: readOnlyOnly(claim.Spec.AccessModes),
			}},
			NodeAffinity: nodeAffinity(vol.GetAccessibleTopology()),
		},
	}
}

func readOnlyOnly(modes []v1.PersistentVolumeAccessMode) bool {
	return len(modes) > 0 && !slices.ContainsFunc(modes, func(m v1.PersistentVolumeAccessMode) bool {
		return m != v1.ReadOnlyMany
	})
}

// nodeAffinity requires pods to run where the volume is reachable: any one
// of the topologies (terms are ORed), each with all of its segments.
func nodeAffinity(topologies []*csi.Topology) *v1.VolumeNodeAffinity {
	var terms []v1.NodeSelectorTerm
	for _, t := range topologies {
		keys := make([]string, 0, len(t.GetSegments()))
		for k := range t.GetSegments() {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var term v1.NodeSelectorTerm
		for _, k := range keys {
			term.MatchExpressions = append(term.MatchExpressions, v1.NodeSelectorRequirement{
				Key: k, Operator: v1.NodeSelectorOpIn, Values: []string{t.GetSegments()[k]},
			})
		}
		if len(term.MatchExpressions) > 0 {
			terms = append(terms, term)
		}
	}
	if len(terms) == 0 {
		return nil
	}
	return &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: terms}}
}

// provisioningState tells the library whether a failed CreateVolume may
// still finish on its own. If it may (a timeout, a lost connection), the
// library keeps retrying even when the claim is deleted meanwhile, so that
// the volume still gets a PV and is cleaned up by the normal Delete path
// instead of leaking.
func provisioningState(err error, mayReschedule bool) controller.ProvisioningState {
	st, ok := status.FromError(err)
	if !ok {
		// Not from the driver: it failed before the driver was called.
		return controller.ProvisioningFinished
	}
	switch st.Code() {
	case codes.ResourceExhausted:
		if mayReschedule {
			// This node is full; the scheduler may pick another one.
			return controller.ProvisioningReschedule
		}
		return controller.ProvisioningInBackground
	case codes.Canceled, codes.DeadlineExceeded, codes.Unavailable, codes.Aborted:
		return controller.ProvisioningInBackground
	}
	return controller.ProvisioningFinished
}

// driverError makes a driver error readable in an event: the status
// message without the gRPC decoration, with the code for the curious. The
// status stays reachable (status.FromError) for metrics.
func driverError(err error) error {
	if st, ok := status.FromError(err); ok {
		return readableStatus{st}
	}
	return err
}

type readableStatus struct{ st *status.Status }

func (e readableStatus) Error() string              { return fmt.Sprintf("%s (%s)", e.st.Message(), e.st.Code()) }
func (e readableStatus) GRPCStatus() *status.Status { return e.st }
