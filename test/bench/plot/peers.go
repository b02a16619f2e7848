package main

import (
	"fmt"
	"strings"
)

// peerTable compares Stowage with csi-driver-nfs behind external-provisioner
// (the "peer" rows of the bulk benchmark), each measured in the same run.
// The peer's CPU and RSS are csi-provisioner's and nfsplugin's together.
func peerTable(dir string, md *strings.Builder) error {
	header := false
	for _, s := range [][2]string{{"20", "30"}, {"200", "400"}} {
		for _, n := range []int{10, 100, 1000} {
			var d bulkResult
			okD, err := readJSON(bulkFile(dir, "dyn", n, s[0]), &d)
			if err != nil {
				return err
			}
			for _, mode := range []string{"peer", "peer-tuned"} {
				var p bulkResult
				okP, err := readJSON(bulkFile(dir, mode, n, s[0]), &p)
				if err != nil {
					return err
				}
				if !okP || !okD {
					continue
				}
				if !header {
					md.WriteString("### Bulk provisioning against csi-driver-nfs behind external-provisioner (same run)\n\n")
					md.WriteString("| kcm qps/burst | N | peer | Stowage all Bound | peer all Bound | peer ÷ Stowage | Stowage p50 / p99 | peer p50 / p99 | Stowage CPU / peak RSS | peer CPU / peak RSS |\n|---|---|---|---|---|---|---|---|---|---|\n")
					header = true
				}
				fmt.Fprintf(md, "| %s/%s | %d | %s | %.2f s | %.2f s | %.2f× | %.3f / %.3f s | %.3f / %.3f s | %s | %s |\n",
					s[0], s[1], n, label(mode), d.AllBoundS, p.AllBoundS, p.AllBoundS/d.AllBoundS,
					d.P50S, d.P99S, p.P50S, p.P99S, usage(d), usage(p))
			}
		}
	}
	if header {
		md.WriteString("\nPeer CPU and RSS: csi-provisioner + nfsplugin, CPU including the mount helpers nfsplugin runs; RSS the sum of their peaks.\n\n")
	}
	return nil
}

func usage(r bulkResult) string {
	if r.Controller == nil {
		return "—"
	}
	return fmt.Sprintf("%.2f s / %.0f MiB", r.Controller.CPUSeconds, float64(max(r.Controller.VmHWMKiB, r.Controller.Sampled))/1024)
}
