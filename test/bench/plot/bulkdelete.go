package main

import (
	"fmt"
	"strings"
)

// bulkDeleteResult is the part of a bulk result that the deletion phase and
// the 10,000-claim rules add (test/bench/bulk: delete.go, tail.go).
type bulkDeleteResult struct {
	AllBoundS      float64 `json:"all_bound_s"`
	DeleteAllGoneS float64 `json:"delete_all_gone_s"`
	DeleteP50S     float64 `json:"delete_p50_s"`
	DeleteP99S     float64 `json:"delete_p99_s"`
	TailRuleOK     *bool   `json:"tail_rule_ok"`
	LoadAvgStart   string  `json:"loadavg_start"`
	Tenths         []struct {
		MedianS float64 `json:"median_s"`
		MaxS    float64 `json:"max_s"`
	} `json:"tenths"`
	Controller *struct {
		CPUSeconds float64 `json:"cpu_s"`
		VmHWMKiB   int64   `json:"vmhwm_kib"`
		Sampled    int64   `json:"sampled_peak_rss_kib"`
	} `json:"controller"`
	DeleteProc *struct {
		CPUSeconds float64 `json:"cpu_s"`
	} `json:"delete_controller"`
}

var kcmSettings = [][2]string{{"20", "30"}, {"200", "400"}}

// deleteTable: every bulk row's deletion phase, with Stowage's target
// (N = 100: all PVs and directories gone ≤ 5 s) and its ratio to each row.
func deleteTable(dir string, md *strings.Builder) error {
	header := false
	for _, s := range kcmSettings {
		for _, n := range []int{10, 100, 1000, 10000} {
			var d bulkDeleteResult
			okD, err := readJSON(bulkFile(dir, "dyn", n, s[0]), &d)
			if err != nil {
				return err
			}
			for _, mode := range bulkModes {
				var r bulkDeleteResult
				ok, err := readJSON(bulkFile(dir, mode, n, s[0]), &r)
				if err != nil {
					return err
				}
				if !ok || r.DeleteAllGoneS == 0 {
					continue
				}
				if !header {
					md.WriteString("### Bulk deletion: N claims deleted at once until their PVs and directories are gone\n\n")
					md.WriteString("| kcm qps/burst | N | row | all gone | per PV p50 / p99 | Stowage ÷ row | deletion CPU | target (Stowage, N=100 ≤ 5 s) | load 1/5/15 min |\n|---|---|---|---|---|---|---|---|---|\n")
					header = true
				}
				ratio, target, cpu := "—", "—", "—"
				if okD && d.DeleteAllGoneS > 0 && mode != "dyn" {
					ratio = fmt.Sprintf("%.2f×", d.DeleteAllGoneS/r.DeleteAllGoneS)
				}
				if mode == "dyn" && n == 100 {
					target = met(r.DeleteAllGoneS <= 5)
				}
				if r.DeleteProc != nil {
					cpu = fmt.Sprintf("%.2f s", r.DeleteProc.CPUSeconds)
				}
				fmt.Fprintf(md, "| %s/%s | %d | %s | %.2f s | %.3f / %.3f s | %s | %s | %s | %s |\n",
					s[0], s[1], n, label(mode), r.DeleteAllGoneS, r.DeleteP50S, r.DeleteP99S, ratio, cpu, target, loadOf(r))
			}
		}
	}
	if header {
		md.WriteString("\nThe floor's claims are bound to pre-made Retain PVs that the bench deletes as soon as the PV controller marks them Released: no provisioner and no directory. The other rows' PVs count as gone when the PV is gone from the API and its directory from the export (listed every 20 ms).\n\n")
	}
	return nil
}

// tenThousandTable: the N = 10,000 rows against issue 13's rules: all
// Bound, controller ≤ 150 MiB peak RSS, no claim slower than 2× the median
// of its tenth (tenths by creation order).
func tenThousandTable(dir string, md *strings.Builder) error {
	header := false
	for _, s := range kcmSettings {
		for _, mode := range bulkModes {
			var r bulkDeleteResult
			ok, err := readJSON(bulkFile(dir, mode, 10000, s[0]), &r)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if !header {
				md.WriteString("### 10,000 claims at once\n\n")
				md.WriteString("| kcm qps/burst | row | all Bound | peak RSS (target ≤ 150 MiB) | CPU | worst tenth: max ÷ median | tail rule (≤ 2×) | load 1/5/15 min |\n|---|---|---|---|---|---|---|---|\n")
				header = true
			}
			rss, cpu := "—", "—"
			if r.Controller != nil {
				mib := float64(max(r.Controller.VmHWMKiB, r.Controller.Sampled)) / 1024
				rss = fmt.Sprintf("%.0f MiB (%s)", mib, met(mib <= 150))
				cpu = fmt.Sprintf("%.1f s", r.Controller.CPUSeconds)
			}
			worst := 0.0
			for _, t := range r.Tenths {
				if t.MedianS > 0 && t.MaxS/t.MedianS > worst {
					worst = t.MaxS / t.MedianS
				}
			}
			rule := "—"
			if r.TailRuleOK != nil {
				rule = met(*r.TailRuleOK)
			}
			fmt.Fprintf(md, "| %s/%s | %s | %.1f s | %s | %s | %.2f× | %s | %s |\n", s[0], s[1], label(mode), r.AllBoundS, rss, cpu, worst, rule, loadOf(r))
		}
	}
	if header {
		md.WriteString("\n")
	}
	return nil
}

// loadOf is the load average when the row's claims were created; results
// from before the bench recorded it have none.
func loadOf(r bulkDeleteResult) string {
	if r.LoadAvgStart == "" {
		return "—"
	}
	return r.LoadAvgStart
}
