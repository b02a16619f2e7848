package driver

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ClaimLookup reads the access modes of the claim bound to a PV from the
// Kubernetes API, for Options.ClaimAccessModes. It needs get on
// persistentvolumes and persistentvolumeclaims.
func ClaimLookup(client kubernetes.Interface) func(ctx context.Context, pvName, volumeID string) ([]string, error) {
	return func(ctx context.Context, pvName, volumeID string) ([]string, error) {
		pv, err := client.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: PV %s does not exist", ErrNotTheClaim, pvName)
		}
		if err != nil {
			return nil, fmt.Errorf("get PV %s: %w", pvName, err)
		}
		if pv.Spec.CSI == nil || pv.Spec.CSI.VolumeHandle != volumeID {
			return nil, fmt.Errorf("%w: PV %s is not volume %s", ErrNotTheClaim, pvName, volumeID)
		}
		ref := pv.Spec.ClaimRef
		if ref == nil || ref.Name == "" {
			return nil, fmt.Errorf("%w: PV %s is not bound to a claim", ErrNotTheClaim, pvName)
		}
		pvc, err := client.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: claim %s/%s of PV %s does not exist", ErrNotTheClaim, ref.Namespace, ref.Name, pvName)
		}
		if err != nil {
			return nil, fmt.Errorf("get claim %s/%s of PV %s: %w", ref.Namespace, ref.Name, pvName, err)
		}
		// A claim deleted and made again under the same name is another claim.
		if ref.UID != "" && pvc.UID != ref.UID {
			return nil, fmt.Errorf("%w: claim %s/%s has UID %s, PV %s was bound to UID %s",
				ErrNotTheClaim, ref.Namespace, ref.Name, pvc.UID, pvName, ref.UID)
		}
		modes := make([]string, 0, len(pvc.Spec.AccessModes))
		for _, m := range pvc.Spec.AccessModes {
			modes = append(modes, string(m))
		}
		return modes, nil
	}
}
