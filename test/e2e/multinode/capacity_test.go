package multinode

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestCapacityPerNode: for the local class, each node's plugin publishes one CSIStorageCapacity
// whose topology is that node and whose capacity is positive: exactly one per node, none for a node
// that does not exist.
func TestCapacityPerNode(t *testing.T) {
	c := setup(t)
	waiter(t, bindTimeout).Eventually("one CSIStorageCapacity of class "+localClass+" per node", func(ctx context.Context) (bool, error) {
		list, err := c.client.StorageV1().CSIStorageCapacities(releaseNamespace).List(ctx, metav1.ListOptions{
			LabelSelector: "csi.storage.k8s.io/drivername=" + driverName,
		})
		if err != nil {
			return false, err
		}
		var seen []string
		perNode := map[string]int{}
		for _, o := range list.Items {
			if o.StorageClassName != localClass {
				continue
			}
			node := ""
			if o.NodeTopology != nil {
				node = o.NodeTopology.MatchLabels["topology.stowage.io/node"]
			}
			seen = append(seen, fmt.Sprintf("%s(node %q, %v)", o.Name, node, o.Capacity))
			if o.Capacity == nil || o.Capacity.Sign() <= 0 {
				return false, fmt.Errorf("%s has no capacity; all: %s", o.Name, strings.Join(seen, " "))
			}
			if !slices.Contains(c.nodes, node) {
				return false, fmt.Errorf("%s is for node %q, not one of %v", o.Name, node, c.nodes)
			}
			perNode[node]++
		}
		for _, n := range c.nodes {
			if perNode[n] != 1 {
				return false, fmt.Errorf("node %s has %d objects, want 1; all: %s", n, perNode[n], strings.Join(seen, " "))
			}
		}
		return true, nil
	})
}
