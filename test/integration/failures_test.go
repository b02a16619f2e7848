package integration

import (
	"context"
	"errors"
	"os"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// TestProvisioningFailures: bad class parameters, an unreachable NFS
// server, a full or missing backend: each claim gets an event that says what
// is wrong, and nothing half-made is left behind.
func TestProvisioningFailures(t *testing.T) {
	h := newHarness(t)
	rwo := []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}
	type failure struct {
		claim string
		wants []string // in the ProvisioningFailed message
		check func(t *testing.T, h *harness)
	}
	var cases []failure
	bs := h.backends()

	if env.nfs != nil {
		h.claim("unknown-param", h.nfsClass("unknown", map[string]string{"colour": "blue"}), "", "64Mi", rwo)
		cases = append(cases, failure{claim: "unknown-param", wants: []string{"colour", "allowed"}})

		h.claim("bad-backend", h.nfsClass("s3", map[string]string{"backend": "s3"}), "", "64Mi", rwo)
		cases = append(cases, failure{claim: "bad-backend", wants: []string{`"s3"`, "nfs or local"}})

		h.claim("escape", h.nfsClass("escape", map[string]string{"subDir": "../${pv.name}"}), "", "64Mi", rwo)
		cases = append(cases, failure{claim: "escape", wants: []string{"subDir", ".."}})

		// Nothing listens there (the test server serves one address only).
		h.claim("no-server", h.nfsClass("no-server", map[string]string{"server": "127.0.0.2"}), "", "64Mi", rwo)
		cases = append(cases, failure{claim: "no-server", wants: []string{"127.0.0.2"}})

		h.claim("no-share", h.nfsClass("no-share", map[string]string{"share": "/nope"}), "", "64Mi", rwo)
		cases = append(cases, failure{claim: "no-share", wants: []string{"/nope"}})

		block := v1.PersistentVolumeBlock
		h.claim("block", h.nfsClass("block", nil), "", "64Mi", rwo, func(c *v1.PersistentVolumeClaim) { c.Spec.VolumeMode = &block })
		cases = append(cases, failure{claim: "block", wants: []string{"block", "volumeMode: Filesystem"}})

		if env.nfs.smallShare != "" {
			h.claim("nfs-full", h.nfsClass("small", map[string]string{"share": env.nfs.smallShare}), "", "1Gi", rwo)
			cases = append(cases, failure{claim: "nfs-full", wants: []string{"available"}})
		}
	}

	local := bs[len(bs)-1]
	localSC := local.class("local", nil)
	h.claim("local-full", localSC, local.node, "1Pi", rwo)
	cases = append(cases, failure{claim: "local-full", wants: []string{"available"}, check: func(t *testing.T, h *harness) {
		// The node is full: the claim goes back to the scheduler for another.
		h.Eventually("selected-node cleared for rescheduling", func(context.Context) (bool, error) {
			pvc, err := h.GetClaim("local-full")
			if err != nil {
				return false, err
			}
			_, set := pvc.Annotations[annNode]
			return !set, errors.New("annotation still set")
		})
	}})

	// A node whose base path vanished after it started (a disk not mounted).
	broken := h.nodeName("b")
	h.node(broken)
	if err := os.RemoveAll(h.bases[broken]); err != nil {
		t.Fatal(err)
	}
	h.claim("missing-base", localSC, broken, "64Mi", rwo)
	cases = append(cases, failure{claim: "missing-base", wants: []string{h.bases[broken]}, check: func(t *testing.T, h *harness) {
		if _, err := os.Stat(h.bases[broken]); !os.IsNotExist(err) {
			t.Errorf("base path %s was recreated by provisioning (%v); a missing disk must not be papered over", h.bases[broken], err)
		}
	}})

	for _, c := range cases {
		t.Run(c.claim, func(t *testing.T) {
			h := h.sub(t)
			msg := h.WaitEvent("PersistentVolumeClaim", c.claim, "ProvisioningFailed", c.wants...)
			t.Logf("event: %s", msg)
			if c.check != nil {
				c.check(t, h)
			}
		})
	}
	t.Run("nothing half-made", func(t *testing.T) {
		h := h.sub(t)
		if pvs := h.pvsOfDriver(); len(pvs) != 0 {
			t.Errorf("%d PVs exist for refused claims", len(pvs))
		}
		for _, b := range bs {
			h.expectNoVolumes(b)
		}
	})
}
