// Command pods measures local claims through pods on the real cluster of
// test/cluster with Stowage installed (make demo, or test/cluster/up.sh +
// test/e2e/install.sh):
//
//   - start: N pods created at once, each with a fresh WaitForFirstConsumer
//     claim of the local class, from the first create call until all are
//     Running; against the floor of the same N pods with an emptyDir, in the
//     same run, and against a second floor: the same N pods with claims of a
//     WaitForFirstConsumer class with no provisioner whose PVs (hostPath, on
//     the node) exist before the clock starts ("static"): what the scheduler's
//     volume binding and the PV controller cost with no provisioner at all.
//     Optional variants (-variants): "inline", the same pod with a CSI
//     ephemeral inline Stowage volume instead of a claim (issue 13 §3: ≤ 1.1×
//     emptyDir); "local-path" and "local-path-tuned", claims of the peer
//     local-path-provisioner (test/bench/peers/local-path.yaml) at its
//     defaults and with more workers. The variants rotate (rep 0: emptyDir,
//     static, claim; rep 1: claim, emptyDir, static; ...) so that all see the
//     same load; the report takes the median over the repetitions.
//   - delete: after each claim wave (Stowage's and each peer's), its pods are
//     deleted and waited for, then its claims are deleted; the clock runs from
//     the first claim delete call until the last of their PVs is gone from the
//     API.
//
// Every observation (Running, PodScheduled, claim Bound, PV seen, PV
// Released, pod and PV gone) is the time a watch delivered it. Results go to
// -out-dir as pods-<N>.json; test/bench/run.sh drives it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

type options struct {
	kubeconfig string
	counts     []int
	reps       int
	namespace  string
	class      string
	image      string
	size       string
	outDir     string
	settle     time.Duration
	timeout    time.Duration
	keep       bool
	staticDir  string
	variants   []variant
}

func main() {
	var o options
	var counts, variants string
	flag.StringVar(&o.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	flag.StringVar(&counts, "counts", "1,10,50", "pods at once, comma-separated")
	flag.IntVar(&o.reps, "reps", 3, "repetitions of each variant per count")
	flag.StringVar(&o.namespace, "namespace", "bench-pods", "namespace of the pods and claims (created, and deleted at the end)")
	flag.StringVar(&o.class, "class", "stowage-local", "StorageClass of the claims (local, WaitForFirstConsumer)")
	flag.StringVar(&o.image, "image", "docker.io/library/busybox:1.37", "pod image; must already be on the node")
	flag.StringVar(&o.size, "size", "64Mi", "claim size")
	flag.StringVar(&o.outDir, "out-dir", ".", "directory of the result files pods-<N>.json")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "pause between waves, after the previous wave is gone")
	flag.DurationVar(&o.timeout, "timeout", 15*time.Minute, "give up on one wave (start, pods deleted, claims deleted) after this long; local-path at its defaults takes minutes for 50")
	flag.StringVar(&o.staticDir, "static-dir", "/tmp/stowage-bench-pods", "node directory of the static floor's hostPath PVs (removed at the end)")
	flag.BoolVar(&o.keep, "keep", false, "keep the namespace at the end")
	flag.StringVar(&variants, "variants", "emptydir,static,claim,inline",
		"variants to rotate, comma-separated: "+strings.Join(allVariants, ", ")+" (the local-path ones need test/bench/peers/local-path.yaml installed)")
	klog.InitFlags(nil)
	flag.Parse()
	for _, s := range strings.Split(counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "pods: bad -counts entry %q\n", s)
			os.Exit(2)
		}
		o.counts = append(o.counts, n)
	}
	var err error
	if o.variants, err = parseVariants(o, variants); err != nil {
		fmt.Fprintln(os.Stderr, "pods:", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "pods:", err)
		os.Exit(1)
	}
}

// Settings are copied into every result file.
type Settings struct {
	Class     string   `json:"class"`
	Variants  []string `json:"variants,omitempty"`
	Image     string   `json:"image"`
	Size      string   `json:"size"`
	Reps      int      `json:"reps"`
	Namespace string   `json:"namespace"`
	SettleS   float64  `json:"settle_s"`
	Node      string   `json:"node,omitempty"`
	Server    string   `json:"server_version,omitempty"`
}

// Result is one count N.
type Result struct {
	N        int      `json:"n"`
	Date     string   `json:"date"`
	Settings Settings `json:"settings"`
	Start    Start    `json:"start"`
	Delete   Delete   `json:"delete"`
	// Variants beyond emptydir, static and claim (which are Start and Delete,
	// as in results before there were more), by name.
	Variants map[string]*Variant `json:"variants,omitempty"`
}

// Start compares the two variants; medians are over the repetitions' totals.
type Start struct {
	EmptyDir        []*Wave `json:"emptydir"`
	Static          []*Wave `json:"static"`
	Claim           []*Wave `json:"claim"`
	EmptyDirMedianS float64 `json:"emptydir_median_s"`
	StaticMedianS   float64 `json:"static_median_s"`
	ClaimMedianS    float64 `json:"claim_median_s"`
	// Ratio is claim / emptyDir (the target's); RatioStatic is claim / static.
	Ratio       float64 `json:"ratio"`
	RatioStatic float64 `json:"ratio_static"`
	// RatioPaired: the median over repetitions of claim / emptyDir within the
	// same repetition (the two waves ran back to back, so they share the
	// machine's load of that moment).
	RatioPaired float64 `json:"ratio_paired"`
	// Per-pod p50 (median over repetitions of each wave's p50).
	EmptyDirP50S float64 `json:"emptydir_pod_p50_s"`
	StaticP50S   float64 `json:"static_pod_p50_s"`
	StaticP99S   float64 `json:"static_pod_p99_s"`
	ClaimP50S    float64 `json:"claim_pod_p50_s"`
	EmptyDirP99S float64 `json:"emptydir_pod_p99_s"`
	ClaimP99S    float64 `json:"claim_pod_p99_s"`
	Target       float64 `json:"target_ratio"`
	Met          bool    `json:"met"`
}

// Wave is one batch of N pods of one variant.
type Wave struct {
	Variant string `json:"variant"` // emptydir, static or claim
	Rep     int    `json:"rep"`
	Order   int    `json:"order"` // position in its repetition, from 0
	T0      string `json:"t0"`    // wall clock of the first create call (RFC3339Nano), to find it in logs
	// AllRunningS: from the first create call to the last pod seen Running.
	AllRunningS float64 `json:"all_running_s"`
	CreateS     float64 `json:"create_calls_s"` // until every create call returned
	// PodsGoneS: from the first pod delete call until all are gone (kubelet's
	// teardown, NodeUnpublish of inline volumes included).
	PodsGoneS float64    `json:"pods_gone_s"`
	P50S      float64    `json:"p50_s"`
	P99S      float64    `json:"p99_s"`
	MaxS      float64    `json:"max_s"`
	Pods      []PodTimes `json:"pods"`
}

// PodTimes are seconds from just before this pod's first create call (its
// claim's, in the claim variant) to what the watches saw.
type PodTimes struct {
	Name  string `json:"name"`
	Claim string `json:"claim,omitempty"`
	PV    string `json:"pv,omitempty"`
	// SelectedNodeS: the scheduler's volume.kubernetes.io/selected-node on the claim (its PreBind;
	// a provisioner starts here).
	SelectedNodeS float64 `json:"selected_node_s,omitempty"`
	PVSeenS       float64 `json:"pv_seen_s,omitempty"`     // the PV object appeared
	BoundS        float64 `json:"claim_bound_s,omitempty"` // the claim turned Bound
	ScheduledS    float64 `json:"scheduled_s"`             // PodScheduled=True (after the scheduler's binding)
	RunningS      float64 `json:"running_s"`
}

// Delete is the claim-deletion measurement over the claim waves.
type Delete struct {
	Waves   []*DeleteWave `json:"waves"`
	MedianS float64       `json:"median_s"`
	TargetS float64       `json:"target_s,omitempty"`
	Met     *bool         `json:"met,omitempty"`
}

// DeleteWave is one claim wave's teardown.
type DeleteWave struct {
	Rep int    `json:"rep"`
	T0  string `json:"t0"` // wall clock of the first claim delete call
	// PodsGoneS: pods deleted (grace period 1 s) until all gone; not part of the measurement.
	PodsGoneS float64 `json:"pods_gone_s"`
	// AllGoneS: from the first claim delete call to the last PV gone.
	AllGoneS float64   `json:"all_gone_s"`
	P50S     float64   `json:"p50_s"`
	P99S     float64   `json:"p99_s"`
	PVs      []PVTimes `json:"pvs"`
}

// PVTimes are seconds from the claim's delete call.
type PVTimes struct {
	PV          string  `json:"pv"`
	Claim       string  `json:"claim"`
	ClaimGoneS  float64 `json:"claim_gone_s"`
	ReleasedS   float64 `json:"released_s"`           // phase Released seen
	DeletionTSS float64 `json:"deletion_timestamp_s"` // deletionTimestamp seen (provisioner's Delete call)
	GoneS       float64 `json:"gone_s"`
}

func run(o options) error {
	rc, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return err
	}
	// The tool must never be the bottleneck.
	rc.QPS, rc.Burst = 2000, 4000
	rc.UserAgent = "stowage-bench-pods"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	ctx := context.Background()
	b := &bench{o: o, client: client}
	if err := b.setup(ctx); err != nil {
		return err
	}
	defer func() {
		if !o.keep {
			b.teardown(context.Background())
		}
	}()
	settings := Settings{Class: o.class, Image: o.image, Size: o.size, Reps: o.reps, Namespace: o.namespace,
		SettleS: o.settle.Seconds(), Node: b.node}
	for _, v := range o.variants {
		settings.Variants = append(settings.Variants, v.name)
	}
	if v, err := client.Discovery().ServerVersion(); err == nil {
		settings.Server = v.GitVersion
	}
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return err
	}
	for _, n := range o.counts {
		res := &Result{N: n, Settings: settings}
		for rep := 0; rep < o.reps; rep++ {
			for order, v := range rotation(o.variants, rep) {
				time.Sleep(o.settle)
				w, d, err := b.wave(ctx, v, n, rep, order)
				if err != nil {
					return fmt.Errorf("wave of N=%d, rep %d, %s: %w", n, rep, v.name, err)
				}
				res.add(v.name, w, d)
				msg := fmt.Sprintf("N=%d rep=%d %-16s all Running %.2fs (p50 %.2f p99 %.2f)", n, rep, v.name, w.AllRunningS, w.P50S, w.P99S)
				if d != nil {
					msg += fmt.Sprintf("; claims deleted -> PVs gone %.2fs", d.AllGoneS)
				}
				fmt.Fprintln(os.Stderr, msg)
			}
		}
		summarize(res)
		res.Date = time.Now().UTC().Format(time.RFC3339)
		data, err := json.MarshalIndent(res, "", " ")
		if err != nil {
			return err
		}
		path := filepath.Join(o.outDir, fmt.Sprintf("pods-%d.json", n))
		if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "N=%d: emptyDir %.2fs, static %.2fs, claim %.2fs, ratio %.2f (to static %.2f); delete %.2fs -> %s\n",
			n, res.Start.EmptyDirMedianS, res.Start.StaticMedianS, res.Start.ClaimMedianS, res.Start.Ratio, res.Start.RatioStatic, res.Delete.MedianS, path)
		for _, v := range o.variants {
			if x := res.Variants[v.name]; x != nil {
				line := fmt.Sprintf("N=%d: %s %.2fs, %.2f× emptyDir", n, v.name, x.MedianS, x.RatioEmptyDir)
				if x.Delete != nil {
					line += fmt.Sprintf("; delete %.2fs", x.Delete.MedianS)
				}
				fmt.Fprintln(os.Stderr, line)
			}
		}
	}
	return nil
}

// add files one wave (and its claims' deletion) under its variant.
func (r *Result) add(name string, w *Wave, d *DeleteWave) {
	switch name {
	case vEmptyDir:
		r.Start.EmptyDir = append(r.Start.EmptyDir, w)
	case vStatic:
		r.Start.Static = append(r.Start.Static, w) // its PVs are deleted by hand: not a measurement
	case vClaim:
		r.Start.Claim = append(r.Start.Claim, w)
		r.Delete.Waves = append(r.Delete.Waves, d)
	default:
		if r.Variants == nil {
			r.Variants = map[string]*Variant{}
		}
		v := r.Variants[name]
		if v == nil {
			v = &Variant{}
			r.Variants[name] = v
		}
		v.Waves = append(v.Waves, w)
		if d != nil {
			if v.Delete == nil {
				v.Delete = &Delete{}
			}
			v.Delete.Waves = append(v.Delete.Waves, d)
		}
	}
}

func summarize(r *Result) {
	totals := medianOf
	s := &r.Start
	s.EmptyDirMedianS = totals(s.EmptyDir, func(w *Wave) float64 { return w.AllRunningS })
	s.ClaimMedianS = totals(s.Claim, func(w *Wave) float64 { return w.AllRunningS })
	s.StaticMedianS = totals(s.Static, func(w *Wave) float64 { return w.AllRunningS })
	s.StaticP50S = totals(s.Static, func(w *Wave) float64 { return w.P50S })
	s.StaticP99S = totals(s.Static, func(w *Wave) float64 { return w.P99S })
	s.RatioPaired = pairedRatio(s.Claim, s.EmptyDir)
	if s.StaticMedianS > 0 {
		s.RatioStatic = s.ClaimMedianS / s.StaticMedianS
	}
	s.EmptyDirP50S = totals(s.EmptyDir, func(w *Wave) float64 { return w.P50S })
	s.ClaimP50S = totals(s.Claim, func(w *Wave) float64 { return w.P50S })
	s.EmptyDirP99S = totals(s.EmptyDir, func(w *Wave) float64 { return w.P99S })
	s.ClaimP99S = totals(s.Claim, func(w *Wave) float64 { return w.P99S })
	if s.EmptyDirMedianS > 0 {
		s.Ratio = s.ClaimMedianS / s.EmptyDirMedianS
	}
	s.Target = 1.3
	s.Met = s.Ratio <= s.Target
	var gone []float64
	for _, d := range r.Delete.Waves {
		gone = append(gone, d.AllGoneS)
	}
	r.Delete.MedianS = median(gone)
	if r.N == 10 {
		met := r.Delete.MedianS <= 2
		r.Delete.TargetS, r.Delete.Met = 2, &met
	}
	for name, v := range r.Variants {
		summarizeVariant(name, r.N, v, s, r.Delete.MedianS)
	}
}

func median(xs []float64) float64 { return quantile(xs, 0.5) }

// quantile is the nearest-rank quantile of xs (0 for none).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if q == 0.5 && len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	i := int(q*float64(len(s))+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}
