package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// `helm uninstall` leaves nothing of Stowage behind: no pods, no CSIDriver, no classes, no RBAC, and
// kubelet no longer lists the driver. Then Stowage is installed again (install.sh), so that whatever
// runs next finds it as before. Runs last (file order) but depends on no other test.
func TestHelmUninstall(t *testing.T) {
	e := setup(t)
	ctx := context.Background()

	// Volumes go before the driver that deletes them: every test cleans its own, so none may be left.
	pvs, err := e.client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, pv := range pvs.Items {
		if pv.Spec.CSI != nil && pv.Spec.CSI.Driver == driverName {
			t.Errorf("PV %s (%s, claim %v) is left over from an earlier test", pv.Name, pv.Status.Phase, pv.Spec.ClaimRef)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	out, err := exec.Command("helm", "uninstall", releaseName, "--namespace", releaseNamespace, "--wait", "--timeout", "3m").CombinedOutput()
	if err != nil {
		t.Fatalf("helm uninstall: %v\n%s", err, out)
	}
	// Reinstall whatever happens below.
	t.Cleanup(func() {
		if out, err := exec.Command(filepath.Join(e.repo, "test/e2e/install.sh")).CombinedOutput(); err != nil {
			t.Errorf("reinstall with test/e2e/install.sh: %v\n%s", err, out)
		}
	})

	selector := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + releaseName}
	waiter(t, podTimeout).Eventually("no stowage pods", func(ctx context.Context) (bool, error) {
		pods, err := e.client.CoreV1().Pods(releaseNamespace).List(ctx, selector)
		return err == nil && len(pods.Items) == 0, err
	})
	if _, err := e.client.StorageV1().CSIDrivers().Get(ctx, driverName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("CSIDriver %s after uninstall: %v, want NotFound", driverName, err)
	}
	classes, err := e.client.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range classes.Items {
		if sc.Provisioner == driverName {
			t.Errorf("StorageClass %s (provisioner %s) left after uninstall", sc.Name, sc.Provisioner)
		}
	}
	for what, list := range map[string]func() (int, error){
		"ClusterRoles": func() (int, error) {
			l, err := e.client.RbacV1().ClusterRoles().List(ctx, selector)
			if err != nil {
				return 0, err
			}
			return len(l.Items), nil
		},
		"ClusterRoleBindings": func() (int, error) {
			l, err := e.client.RbacV1().ClusterRoleBindings().List(ctx, selector)
			if err != nil {
				return 0, err
			}
			return len(l.Items), nil
		},
		"ServiceAccounts": func() (int, error) {
			l, err := e.client.CoreV1().ServiceAccounts(releaseNamespace).List(ctx, selector)
			if err != nil {
				return 0, err
			}
			return len(l.Items), nil
		},
		"DaemonSets and Deployments": func() (int, error) {
			d, err := e.client.AppsV1().DaemonSets(releaseNamespace).List(ctx, selector)
			if err != nil {
				return 0, err
			}
			dp, err := e.client.AppsV1().Deployments(releaseNamespace).List(ctx, selector)
			if err != nil {
				return 0, err
			}
			return len(d.Items) + len(dp.Items), nil
		},
	} {
		if n, err := list(); err != nil || n != 0 {
			t.Errorf("%s of the release after uninstall: %d (%v), want none", what, n, err)
		}
	}
	// The plugin's registration socket goes with its pod; kubelet then drops the driver from the node.
	waiter(t, podTimeout).Eventually("kubelet to forget "+driverName, func(ctx context.Context) (bool, error) {
		n, err := e.client.StorageV1().CSINodes().Get(ctx, e.nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, d := range n.Spec.Drivers {
			if d.Name == driverName {
				return false, nil
			}
		}
		return true, nil
	})
}
