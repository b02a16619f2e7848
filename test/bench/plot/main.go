// Command plot draws the benchmark PNGs and writes summary.md (the tables of
// docs/benchmarks.md) from the results test/bench/run.sh left in -dir. It is
// its own module so that gonum/plot stays out of Stowage's go.mod.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

type bulkResult struct {
	Mode       string    `json:"mode"`
	N          int       `json:"n"`
	Setting    string    `json:"setting"`
	AllBoundS  float64   `json:"all_bound_s"`
	LatenciesS []float64 `json:"latencies_s"`
	P50S       float64   `json:"p50_s"`
	P99S       float64   `json:"p99_s"`
	Controller *struct {
		CPUSeconds float64 `json:"cpu_s"`
		VmHWMKiB   int64   `json:"vmhwm_kib"`
		Sampled    int64   `json:"sampled_peak_rss_kib"`
	} `json:"controller"`
}

type scrubResult struct {
	Backend string    `json:"backend"`
	Files   int       `json:"files"`
	ScrubS  []float64 `json:"scrub_s"`
	FloorS  []float64 `json:"floor_s"`
}

type memPoint struct {
	PVs   int     `json:"pvs"`
	RSS   int64   `json:"vmrss_kib"`
	HWM   int64   `json:"vmhwm_kib"`
	SyncS float64 `json:"start_to_synced_s"`
}

var palette = []color.Color{
	color.RGBA{0, 90, 181, 255}, color.RGBA{220, 50, 32, 255},
	color.RGBA{0, 150, 80, 255}, color.RGBA{230, 140, 0, 255},
	color.RGBA{120, 60, 170, 255}, color.RGBA{90, 90, 90, 255},
	color.RGBA{0, 170, 190, 255}, color.RGBA{170, 110, 40, 255},
}

// bulkModes are the rows of the bulk benchmark, each a line in its plots.
var bulkModes = []string{"floor", "dyn", "peer", "peer-tuned"}

func main() {
	dir := flag.String("dir", "docs/bench", "results directory")
	flag.Parse()
	var md strings.Builder
	steps := []func(string, *strings.Builder) error{csiTable, bulkPart, peerTable, deleteTable, tenThousandTable, seqTable, scrubPart, memoryTable, podsPart}
	for _, f := range steps {
		if err := f(*dir, &md); err != nil {
			fmt.Fprintln(os.Stderr, "plot:", err)
			os.Exit(1)
		}
	}
	if err := os.WriteFile(filepath.Join(*dir, "summary.md"), []byte(md.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "plot:", err)
		os.Exit(1)
	}
}

func readJSON(path string, v any) (bool, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, json.Unmarshal(b, v)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op`)

// parseBench returns the median ns/op of each benchmark in a go test output.
func parseBench(path string) (map[string]float64, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	all := map[string][]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[3], 64)
		all[m[1]] = append(all[m[1]], v)
	}
	res := map[string]float64{}
	for k, v := range all {
		res[k] = median(v)
	}
	return res, sc.Err()
}

func us(ns float64) string { return fmt.Sprintf("%.0f µs", ns/1000) }

func csiTable(dir string, md *strings.Builder) error {
	for _, fs := range []string{"ext4", "tmpfs"} {
		r, err := parseBench(filepath.Join(dir, "csi-"+fs+".txt"))
		if err != nil || r == nil {
			return err
		}
		fmt.Fprintf(md, "### CSI operations, volumes on %s (median of 3 runs)\n\n", fs)
		fmt.Fprintf(md, "| operation | floor | floor time/op | Stowage time/op | rate vs floor | target | |\n|---|---|---|---|---|---|---|\n")
		empty := r["FloorEmptyCall/serial"]
		row := func(name, floorName string, floor, v float64, target string, ok *bool) {
			t := "—"
			if ok != nil {
				t = met(*ok)
			}
			fmt.Fprintf(md, "| %s | %s | %s | %s | %.1f%% | %s | %s |\n", name, floorName, us(floor), us(v), 100*floor/v, target, t)
		}
		if v, ok := r["CreateDeleteLocal/serial"]; ok {
			// The target, ≥ 50% of the empty-call rate, read both ways: a
			// create+delete pair as one operation, and each of its two calls.
			hit := empty/v >= 0.5
			row("CreateVolume+DeleteVolume local (gRPC, serial), the pair as one operation", "empty gRPC call (Probe)", empty, v, "≥ 50%", &hit)
			hitCall := empty/(v/2) >= 0.5
			row("CreateVolume or DeleteVolume local (gRPC, serial), per call = pair ÷ 2", "empty gRPC call (Probe)", empty, v/2, "≥ 50%", &hitCall)
			row("CreateVolume+DeleteVolume local (gRPC, serial)", "2 empty gRPC calls", 2*empty, v, "", nil)
			row("CreateVolume+DeleteVolume local (gRPC, serial)", "mkdir+rmdir", r["FloorMkdirRmdir"], v, "", nil)
		}
		if v, ok := r["CreateDeleteLocal/parallel"]; ok {
			row("CreateVolume+DeleteVolume local (gRPC, parallel)", "empty gRPC call, parallel", r["FloorEmptyCall/parallel"], v, "", nil)
		}
		if v, ok := r["CreateDeleteLocalInProcess"]; ok {
			row("CreateVolume+DeleteVolume local, in-process (no gRPC)", "mkdir+rmdir", r["FloorMkdirRmdir"], v, "", nil)
		}
		if v, ok := r["CreateDeleteNFS"]; ok {
			row("CreateVolume+DeleteVolume NFS (gRPC)", "userspace NFS mkdir+rmdir", r["FloorNFSMkdirRmdir"], v, "", nil)
		}
		if v, ok := r["PublishUnpublish"]; ok {
			row("NodePublish+NodeUnpublish local (bind mount)", "mount(2)+umount2(2)", r["FloorMountUmount"], v, "", nil)
			if e, ok := r["FloorMountUmountExec"]; ok {
				row("NodePublish+NodeUnpublish local (bind mount)", "mount(8)+umount(8) exec", e, v, "", nil)
			}
		}
		md.WriteString("\n")
	}
	return nil
}

func bulkFile(dir, mode string, n int, qps string) string {
	return filepath.Join(dir, fmt.Sprintf("bulk-%s-%d-kcm%s.json", mode, n, qps))
}

func bulkPart(dir string, md *strings.Builder) error {
	settings := []string{"20", "200"}
	sizes := []int{10, 100, 1000}
	md.WriteString("### Bulk provisioning: N NFS claims at once\n\n")
	md.WriteString("| kcm qps/burst | N | floor all Bound | Stowage all Bound | ratio | target (N=1000 ≤ 1.1×) | floor p50 / p99 | Stowage p50 / p99 | controller CPU | controller peak RSS |\n|---|---|---|---|---|---|---|---|---|---|\n")
	tot := plot.New()
	tot.Title.Text = "Time until all N claims are Bound"
	tot.X.Label.Text = "N claims"
	tot.Y.Label.Text = "seconds"
	tot.X.Scale, tot.Y.Scale = plot.LogScale{}, plot.LogScale{}
	tot.X.Tick.Marker, tot.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	tot.Legend.Top, tot.Legend.Left = true, true
	cdf := plot.New()
	cdf.Title.Text = "Claim creation → Bound latency, N = 1000"
	cdf.X.Label.Text = "seconds"
	cdf.Y.Label.Text = "fraction of claims Bound"
	cdf.Legend.Top, cdf.Legend.Left = false, false
	ci, totLines := 0, 0
	for si, qps := range settings {
		burst := map[string]string{"20": "30", "200": "400"}[qps]
		for mi, mode := range bulkModes {
			var pts plotter.XYs
			for _, n := range sizes {
				var r bulkResult
				ok, err := readJSON(bulkFile(dir, mode, n, qps), &r)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				pts = append(pts, plotter.XY{X: float64(n), Y: r.AllBoundS})
				if n == 1000 && len(r.LatenciesS) > 0 {
					s := append([]float64(nil), r.LatenciesS...)
					sort.Float64s(s)
					var c plotter.XYs
					for i, v := range s {
						c = append(c, plotter.XY{X: v, Y: float64(i+1) / float64(len(s))})
					}
					l, err := plotter.NewLine(c)
					if err != nil {
						return err
					}
					l.Color = palette[ci%len(palette)]
					l.Width = vg.Points(1.5)
					if mode == "floor" {
						l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
					}
					cdf.Add(l)
					cdf.Legend.Add(fmt.Sprintf("%s, kcm %s/%s", label(mode), qps, burst), l)
					ci++
				}
			}
			if len(pts) > 0 {
				l, p, err := plotter.NewLinePoints(pts)
				if err != nil {
					return err
				}
				c := palette[(len(bulkModes)*si+mi)%len(palette)]
				l.Color, p.Color = c, c
				if mode == "floor" {
					l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
				}
				tot.Add(l, p)
				totLines++
				tot.Legend.Add(fmt.Sprintf("%s, kcm %s/%s", label(mode), qps, burst), l, p)
			}
		}
		for _, n := range sizes {
			var f, d bulkResult
			okF, err := readJSON(bulkFile(dir, "floor", n, qps), &f)
			if err != nil {
				return err
			}
			okD, err := readJSON(bulkFile(dir, "dyn", n, qps), &d)
			if err != nil {
				return err
			}
			if !okF || !okD {
				continue
			}
			ratio := d.AllBoundS / f.AllBoundS
			target := "—"
			if n == 1000 {
				target = met(ratio <= 1.1)
			}
			cpu, rss := "", ""
			if d.Controller != nil {
				cpu = fmt.Sprintf("%.2f s", d.Controller.CPUSeconds)
				rss = fmt.Sprintf("%.0f MiB", float64(max(d.Controller.VmHWMKiB, d.Controller.Sampled))/1024)
			}
			fmt.Fprintf(md, "| %s/%s | %d | %.2f s | %.2f s | %.2f× | %s | %.3f / %.3f s | %.3f / %.3f s | %s | %s |\n",
				qps, burst, n, f.AllBoundS, d.AllBoundS, ratio, target, f.P50S, f.P99S, d.P50S, d.P99S, cpu, rss)
		}
	}
	md.WriteString("\n![total time vs N](bench/total-vs-n.png)\n\n![latency distribution](bench/latency-cdf.png)\n\n")
	if totLines > 0 {
		fixLogRange(tot)
		if err := tot.Save(7*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, "total-vs-n.png")); err != nil {
			return err
		}
	}
	if ci == 0 {
		return nil
	}
	return cdf.Save(7*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, "latency-cdf.png"))
}

func label(mode string) string {
	switch mode {
	case "floor":
		return "floor (pre-made PVs)"
	case "peer":
		return "csi-driver-nfs, its deploy flags"
	case "peer-tuned":
		return "csi-driver-nfs, provisioner qps 300/600"
	}
	return "Stowage"
}

func seqTable(dir string, md *strings.Builder) error {
	md.WriteString("### One claim at a time (20 sequential claims)\n\n")
	md.WriteString("| kcm qps/burst | floor p50 / p99 | Stowage p50 / p99 | p50 ratio | target (≤ 1.5×) |\n|---|---|---|---|---|\n")
	for _, s := range [][2]string{{"20", "30"}, {"200", "400"}} {
		var f, d bulkResult
		okF, err := readJSON(filepath.Join(dir, "seq-floor-kcm"+s[0]+".json"), &f)
		if err != nil {
			return err
		}
		okD, err := readJSON(filepath.Join(dir, "seq-dyn-kcm"+s[0]+".json"), &d)
		if err != nil {
			return err
		}
		if !okF || !okD {
			continue
		}
		r := d.P50S / f.P50S
		fmt.Fprintf(md, "| %s/%s | %.3f / %.3f s | %.3f / %.3f s | %.2f× | %s |\n", s[0], s[1], f.P50S, f.P99S, d.P50S, d.P99S, r, met(r <= 1.5))
	}
	md.WriteString("\n")
	return nil
}

func scrubPart(dir string, md *strings.Builder) error {
	md.WriteString("### Recycle scrub (3 × 64 MiB files + N small files of 512 B, 1,000 per directory; median of the rounds)\n\n")
	md.WriteString("| backend | small files | floor | floor time | ScrubVolume time | ratio | target (≤ 1.3×) |\n|---|---|---|---|---|---|---|\n")
	p := plot.New()
	p.Title.Text = "Scrub time vs number of files"
	p.X.Label.Text = "small files in the volume"
	p.Y.Label.Text = "seconds"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	lines := 0
	for bi, b := range []string{"local", "nfs"} {
		matches, _ := filepath.Glob(filepath.Join(dir, "scrub-"+b+"-*.json"))
		var rs []scrubResult
		for _, m := range matches {
			var r scrubResult
			if _, err := readJSON(m, &r); err != nil {
				return err
			}
			rs = append(rs, r)
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].Files < rs[j].Files })
		var sp, fp plotter.XYs
		floorName := map[string]string{"local": "rm -rf", "nfs": "go-nfs-client RemoveAll"}[b]
		for _, r := range rs {
			s, f := median(r.ScrubS), median(r.FloorS)
			sp = append(sp, plotter.XY{X: float64(r.Files), Y: s})
			fp = append(fp, plotter.XY{X: float64(r.Files), Y: f})
			fmt.Fprintf(md, "| %s | %d | %s | %.2f s | %.2f s | %.2f× | %s |\n", b, r.Files, floorName, f, s, s/f, met(s/f <= 1.3))
		}
		for i, pts := range []plotter.XYs{sp, fp} {
			if len(pts) == 0 {
				continue
			}
			l, pt, err := plotter.NewLinePoints(pts)
			if err != nil {
				return err
			}
			l.Color, pt.Color = palette[2*bi+i], palette[2*bi+i]
			name := b + " ScrubVolume"
			if i == 1 {
				l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
				name = b + " floor: " + floorName
			}
			p.Add(l, pt)
			p.Legend.Add(name, l, pt)
			lines++
		}
	}
	md.WriteString("\n![scrub time vs files](bench/scrub-vs-files.png)\n\n")
	if lines == 0 {
		return nil
	}
	fixLogRange(p)
	return p.Save(7*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, "scrub-vs-files.png"))
}

func memoryTable(dir string, md *strings.Builder) error {
	var pts []memPoint
	ok, err := readJSON(filepath.Join(dir, "memory.json"), &pts)
	if err != nil || !ok {
		return err
	}
	md.WriteString("### Controller memory with N Stowage PVs in the cluster\n\n")
	md.WriteString("| PVs | VmRSS | VmHWM | start → informers synced | target | |\n|---|---|---|---|---|---|\n")
	limits := map[int]float64{1000: 80, 10000: 200}
	for _, p := range pts {
		t, m := "—", ""
		if l, ok := limits[p.PVs]; ok {
			t = fmt.Sprintf("≤ %.0f MiB", l)
			m = met(float64(max(p.RSS, p.HWM))/1024 <= l)
		}
		fmt.Fprintf(md, "| %d | %.1f MiB | %.1f MiB | %.2f s | %s | %s |\n", p.PVs, float64(p.RSS)/1024, float64(p.HWM)/1024, p.SyncS, t, m)
	}
	md.WriteString("\n")
	return nil
}

// fixLogRange widens log axes that a single point would collapse to zero
// or below, which the log scale refuses.
func fixLogRange(p *plot.Plot) {
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		if a.Min <= 0 || a.Min == a.Max {
			lo, hi := a.Min, a.Max
			if lo <= 0 {
				lo = hi / 10
			}
			a.Min, a.Max = lo/1.5, hi*1.5
		}
	}
}
