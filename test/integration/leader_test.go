package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestTwoControllerReplicas: of two leader-elected controllers only the
// lease holder provisions; when it dies the other takes over.
func TestTwoControllerReplicas(t *testing.T) {
	h := newHarness(t)
	needNFS(t)
	replicas := map[string]*proc{
		"replica-a": h.controller("replica-a", true),
		"replica-b": h.controller("replica-b", true),
	}
	holder := func() string {
		lease, err := h.c.CoordinationV1().Leases(h.ns).Get(h.ctx, h.driver, metav1.GetOptions{})
		if err != nil || lease.Spec.HolderIdentity == nil {
			return ""
		}
		return *lease.Spec.HolderIdentity
	}
	var leader string
	h.Eventually("a replica holding lease "+h.driver, func(context.Context) (bool, error) {
		leader = holder()
		return replicas[leader] != nil, fmt.Errorf("holder %q", leader)
	})
	follower := "replica-a"
	if leader == follower {
		follower = "replica-b"
	}

	sc := h.nfsClass("nfs", nil)
	modes := []v1.PersistentVolumeAccessMode{v1.ReadWriteMany}
	for i := range 3 {
		h.claim(fmt.Sprintf("first-%d", i), sc, "", "64Mi", modes)
	}
	for i := range 3 {
		h.WaitBound(fmt.Sprintf("first-%d", i))
	}
	if n := strings.Count(replicas[leader].log(), `"Provisioned volume"`); n != 3 {
		t.Errorf("leader %s provisioned %d volumes, want 3", leader, n)
	}
	if strings.Contains(replicas[follower].log(), `"Provisioned volume"`) {
		t.Errorf("standby %s provisioned a volume:\n%s", follower, replicas[follower].tail(20))
	}

	// A crash, not a clean exit: the lease is not released and has to expire.
	replicas[leader].kill()
	h.Eventually(follower+" taking over the lease", func(context.Context) (bool, error) {
		return holder() == follower, fmt.Errorf("holder %q", holder())
	})
	h.claim("after-failover", sc, "", "64Mi", modes)
	h.WaitBound("after-failover")
	if !strings.Contains(replicas[follower].log(), `"Provisioned volume"`) {
		t.Errorf("the new leader %s did not provision the new claim", follower)
	}
	// The old leader comes back as the standby.
	replicas[leader].restart()
	if got := holder(); got != follower {
		t.Errorf("lease holder %q after the old leader's restart, want %s", got, follower)
	}
}
