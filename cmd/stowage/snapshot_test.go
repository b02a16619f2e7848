package main

import (
	"context"
	"testing"

	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
)

func TestOwnsSnapshotSource(t *testing.T) {
	for _, tc := range []struct {
		handle           string
		node, controller bool
	}{
		{"local#n1#pvc-1#pvc-1#delete", true, false},
		{"local#n2#pvc-1#pvc-1#delete", false, false},
		{"nfs#10.0.0.5#/export#pvc-1#pvc-1#delete", false, true},
		{"snapshot#local#n1#snapshot-1", true, false},
		{"snapshot#local#n2#snapshot-1", false, false},
		{"snapshot#nfs#10.0.0.5#/export#snapshot-1", false, true},
		{"snapshot#local#n1#../x", false, true}, // unreadable: the controller tells of it
		{"garbage", false, true},
	} {
		if got := ownsSnapshotSource(modeNode, "n1")(tc.handle); got != tc.node {
			t.Errorf("node n1 owns %s: %v, want %v", tc.handle, got, tc.node)
		}
		if got := ownsSnapshotSource(modeController, "")(tc.handle); got != tc.controller {
			t.Errorf("controller owns %s: %v, want %v", tc.handle, got, tc.controller)
		}
	}
}

// Without the snapshot CRDs the companion runs nothing (its informers would
// fail to list forever); with them it runs the snapshotter.
func TestSnapshotCompanionNeedsTheAPI(t *testing.T) {
	cfg := config{mode: modeController, driverName: "csi.stowage.io"}
	//lint:ignore SA1019 the snapshot client module generates no NewClientset
	client := snapfake.NewSimpleClientset()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// No recorder: a snapshotter made anyway would refuse it, so this fails
	// if the companion does not stop at the missing API.
	run, err := snapshotCompanion(cfg, client, nil)(ctx, nil, nil)
	if err != nil || run == nil {
		t.Fatalf("without the API: run is nil: %v, error %v; want a no-op and no error", run == nil, err)
	}
	run(ctx) // returns at once
	client.Resources = []*metav1.APIResourceList{{GroupVersion: snapshotAPI}}
	if run, err := snapshotCompanion(cfg, client, nil)(ctx, nil, record.NewFakeRecorder(10)); err != nil || run == nil {
		t.Fatalf("with the API: run is nil: %v, error %v; want the snapshotter", run == nil, err)
	}
}
