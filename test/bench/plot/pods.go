package main

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// podsResult is what the plots need of test/bench/pods's pods-<N>.json.
// emptydir, static and claim live in start and delete (as in results from
// before the other variants); the others in variants.
type podsResult struct {
	N     int `json:"n"`
	Start struct {
		EmptyDirMedianS float64 `json:"emptydir_median_s"`
		StaticMedianS   float64 `json:"static_median_s"`
		ClaimMedianS    float64 `json:"claim_median_s"`
	} `json:"start"`
	Delete struct {
		MedianS float64 `json:"median_s"`
	} `json:"delete"`
	Variants map[string]*struct {
		MedianS       float64 `json:"median_s"`
		RatioEmptyDir float64 `json:"ratio_emptydir"`
		Met           *bool   `json:"met"`
		Delete        *struct {
			MedianS float64 `json:"median_s"`
		} `json:"delete"`
	} `json:"variants"`
}

// podVariants are the lines of the pods plots, in legend order.
var podVariants = []struct{ name, label string }{
	{"emptydir", "emptyDir (floor)"},
	{"static", "pre-made PVs, no provisioner (floor)"},
	{"claim", "Stowage claim"},
	{"inline", "Stowage inline volume"},
	{"local-path", "local-path-provisioner, its defaults"},
	{"local-path-tuned", "local-path-provisioner, 50 workers"},
}

// start is the median all-Running time of a variant, 0 if it did not run.
func (r podsResult) start(name string) float64 {
	switch name {
	case "emptydir":
		return r.Start.EmptyDirMedianS
	case "static":
		return r.Start.StaticMedianS
	case "claim":
		return r.Start.ClaimMedianS
	}
	if v := r.Variants[name]; v != nil {
		return v.MedianS
	}
	return 0
}

// deleted is the median time from deleting a variant's claims to their PVs gone, 0 if none.
func (r podsResult) deleted(name string) float64 {
	if name == "claim" {
		return r.Delete.MedianS
	}
	if v := r.Variants[name]; v != nil && v.Delete != nil {
		return v.Delete.MedianS
	}
	return 0
}

func readPods(dir string) ([]podsResult, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "pods-*.json"))
	if err != nil {
		return nil, err
	}
	var rs []podsResult
	for _, m := range matches {
		var r podsResult
		if _, err := readJSON(m, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", m, err)
		}
		if r.N > 0 {
			rs = append(rs, r)
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].N < rs[j].N })
	return rs, nil
}

func secs(v float64) string {
	if v == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f s", v)
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// podsPart: pods with a fresh volume each, N at once, every variant of the
// same run side by side (test/bench/pods), and the claims' deletion.
func podsPart(dir string, md *strings.Builder) error {
	rs, err := readPods(dir)
	if err != nil || len(rs) == 0 {
		return err
	}
	md.WriteString("### Pods with a fresh volume each, N at once, until all Running (medians over the rotated repetitions)\n\n")
	md.WriteString("| N | emptyDir | static PVs | Stowage claim | Stowage inline | local-path | local-path, 50 workers | Stowage claim ÷ emptyDir | inline ÷ emptyDir (target ≤ 1.1×, N = 1, 10) | Stowage ÷ local-path (target ≤ 1) |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		inline := ratio(r.start("inline"), r.start("emptydir"))
		if v := r.Variants["inline"]; v != nil && v.Met != nil {
			inline += " " + met(*v.Met)
		}
		fmt.Fprintf(md, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.N,
			secs(r.start("emptydir")), secs(r.start("static")), secs(r.start("claim")), secs(r.start("inline")),
			secs(r.start("local-path")), secs(r.start("local-path-tuned")),
			ratio(r.start("claim"), r.start("emptydir")), inline, ratio(r.start("claim"), r.start("local-path")))
	}
	md.WriteString("\n| N claims deleted → their PVs gone | Stowage | local-path | local-path, 50 workers |\n|---|---|---|---|\n")
	for _, r := range rs {
		fmt.Fprintf(md, "| %d | %s | %s | %s |\n", r.N, secs(r.deleted("claim")), secs(r.deleted("local-path")), secs(r.deleted("local-path-tuned")))
	}
	md.WriteString("\n![pods until Running vs N](bench/pods-vs-n.png)\n\n![claims deleted vs N](bench/pods-delete-vs-n.png)\n\n")
	if err := podsPlot(rs, "Pods with a fresh volume each: N at once until all Running", "seconds until all Running",
		filepath.Join(dir, "pods-vs-n.png"), podsResult.start); err != nil {
		return err
	}
	return podsPlot(rs, "N claims deleted until their PVs are gone", "seconds until all PVs gone",
		filepath.Join(dir, "pods-delete-vs-n.png"), podsResult.deleted)
}

// podsPlot draws one line per variant that has a value for some N.
func podsPlot(rs []podsResult, title, ylabel, path string, value func(podsResult, string) float64) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "N pods at once"
	p.Y.Label.Text = ylabel
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	lines := 0
	for i, v := range podVariants {
		var pts plotter.XYs
		for _, r := range rs {
			if y := value(r, v.name); y > 0 {
				pts = append(pts, plotter.XY{X: float64(r.N), Y: y})
			}
		}
		if len(pts) == 0 {
			continue
		}
		l, pt, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		l.Color, pt.Color = palette[i%len(palette)], palette[i%len(palette)]
		if v.name == "emptydir" || v.name == "static" {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(l, pt)
		p.Legend.Add(v.label, l, pt)
		lines++
	}
	if lines == 0 {
		return nil
	}
	fixLogRange(p)
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}
