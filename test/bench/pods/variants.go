package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A variant is one way to give the measured pod its /data. Every wave of a
// repetition is one variant; they rotate so that all see the same load.
type variant struct {
	name   string
	prefix string // of its pods' (and claims') names
	class  string // the claims' StorageClass; "" for no claim
	inline bool   // a CSI ephemeral inline Stowage volume in the pod
	static bool   // claims bound to PVs made before the clock starts
	// deletes: its claims' deletion (until their PVs are gone) is measured.
	deletes bool
	// why names what must be installed for this variant, for the error when it is not.
	why string
}

// Variant names, as -variants takes them and the result files and plots name them.
const (
	vEmptyDir       = "emptydir"
	vStatic         = "static"
	vClaim          = "claim"
	vInline         = "inline"
	vLocalPath      = "local-path"
	vLocalPathTuned = "local-path-tuned"
)

var allVariants = []string{vEmptyDir, vStatic, vClaim, vInline, vLocalPath, vLocalPathTuned}

// stowageDriver is the CSI driver of the inline variant.
const stowageDriver = "csi.stowage.io"

func (o options) variant(name string) (variant, error) {
	peer := "install test/bench/peers/local-path.yaml (test/bench/run.sh --parts=pods --peers=on does), or leave " + name + " out of -variants"
	switch name {
	case vEmptyDir:
		return variant{name: name, prefix: "e"}, nil
	case vStatic:
		return variant{name: name, prefix: "s", class: staticClass, static: true}, nil
	case vClaim:
		return variant{name: name, prefix: "c", class: o.class, deletes: true, why: "is Stowage installed? test/e2e/install.sh"}, nil
	case vInline:
		return variant{name: name, prefix: "i", inline: true, why: "is Stowage installed with volumeLifecycleModes Ephemeral? test/e2e/install.sh"}, nil
	case vLocalPath:
		return variant{name: name, prefix: "l", class: "local-path", deletes: true, why: peer}, nil
	case vLocalPathTuned:
		return variant{name: name, prefix: "t", class: "local-path-tuned", deletes: true, why: peer}, nil
	}
	return variant{}, fmt.Errorf("unknown variant %q; known: %s", name, strings.Join(allVariants, ", "))
}

// parseVariants reads -variants: known names, each once, emptydir among them
// (every ratio is to it).
func parseVariants(o options, list string) ([]variant, error) {
	var vs []variant
	seen := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if seen[s] {
			return nil, fmt.Errorf("-variants names %s twice", s)
		}
		seen[s] = true
		v, err := o.variant(s)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	if !seen[vEmptyDir] {
		return nil, fmt.Errorf("-variants %q has no %s: every ratio is to the emptyDir floor", list, vEmptyDir)
	}
	return vs, nil
}

// checkInstalled fails early, saying what to install, when a variant's
// StorageClass or (inline) CSIDriver is missing.
func (b *bench) checkInstalled(ctx context.Context) error {
	for _, v := range b.o.variants {
		switch {
		case v.class != "" && !v.static:
			if _, err := b.client.StorageV1().StorageClasses().Get(ctx, v.class, metav1.GetOptions{}); err != nil {
				return fmt.Errorf("variant %s: StorageClass %s (%s): %w", v.name, v.class, v.why, err)
			}
		case v.inline:
			d, err := b.client.StorageV1().CSIDrivers().Get(ctx, stowageDriver, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("variant %s: CSIDriver %s (%s): %w", v.name, stowageDriver, v.why, err)
			}
			if !slices.Contains(d.Spec.VolumeLifecycleModes, storagev1.VolumeLifecycleEphemeral) {
				return fmt.Errorf("variant %s: CSIDriver %s does not list Ephemeral in volumeLifecycleModes (%s)", v.name, stowageDriver, v.why)
			}
		}
	}
	return nil
}

// rotation is the order of the variants in repetition rep: rotated by one
// each time, so that no variant always runs first on a machine whose load drifts.
func rotation(vs []variant, rep int) []variant {
	out := make([]variant, len(vs))
	for k := range vs {
		out[k] = vs[(k+len(vs)-rep%len(vs))%len(vs)]
	}
	return out
}

// Variant is the summary of a variant beyond the three of Start (inline and
// the peers), over its repetitions.
type Variant struct {
	Waves   []*Wave `json:"waves"`
	MedianS float64 `json:"median_s"` // of the waves' all-Running times
	P50S    float64 `json:"pod_p50_s"`
	P99S    float64 `json:"pod_p99_s"`
	// RatioEmptyDir is MedianS / emptyDir's; RatioEmptyDirPaired the median
	// of the same ratio within each repetition.
	RatioEmptyDir       float64 `json:"ratio_emptydir"`
	RatioEmptyDirPaired float64 `json:"ratio_emptydir_paired"`
	// StowageRatio (a peer): Stowage's claim median / this one's; issue 13's
	// target is ≤ 1 on every row.
	StowageRatio float64 `json:"stowage_ratio,omitempty"`
	// Target and Met (inline, N = 1 and 10): MedianS ≤ Target × emptyDir's.
	Target float64 `json:"target_ratio,omitempty"`
	Met    *bool   `json:"met,omitempty"`
	Delete *Delete `json:"delete,omitempty"`
	// StowageDeleteRatio: Stowage's delete median / this one's.
	StowageDeleteRatio float64 `json:"stowage_delete_ratio,omitempty"`
}

// inlineTarget is issue 13 §3's: pod start with an inline Stowage volume ≤
// 1.1× the same pod with an emptyDir, for 1 and 10 pods at once.
const inlineTarget = 1.1

// summarizeVariant fills v from its waves; emptyDir and claim are Start's.
func summarizeVariant(name string, n int, v *Variant, s *Start, claimDelete float64) {
	running := func(w *Wave) float64 { return w.AllRunningS }
	v.MedianS = medianOf(v.Waves, running)
	v.P50S = medianOf(v.Waves, func(w *Wave) float64 { return w.P50S })
	v.P99S = medianOf(v.Waves, func(w *Wave) float64 { return w.P99S })
	if s.EmptyDirMedianS > 0 {
		v.RatioEmptyDir = v.MedianS / s.EmptyDirMedianS
	}
	v.RatioEmptyDirPaired = pairedRatio(v.Waves, s.EmptyDir)
	switch name {
	case vInline:
		if n == 1 || n == 10 {
			met := v.RatioEmptyDir <= inlineTarget
			v.Target, v.Met = inlineTarget, &met
		}
	case vLocalPath, vLocalPathTuned:
		if v.MedianS > 0 && s.ClaimMedianS > 0 {
			v.StowageRatio = s.ClaimMedianS / v.MedianS
		}
	}
	if v.Delete != nil {
		var gone []float64
		for _, d := range v.Delete.Waves {
			gone = append(gone, d.AllGoneS)
		}
		v.Delete.MedianS = median(gone)
		if v.Delete.MedianS > 0 && claimDelete > 0 {
			v.StowageDeleteRatio = claimDelete / v.Delete.MedianS
		}
	}
}

func medianOf(ws []*Wave, f func(*Wave) float64) float64 {
	var xs []float64
	for _, w := range ws {
		xs = append(xs, f(w))
	}
	return median(xs)
}

// pairedRatio is the median over repetitions of a's wave / b's wave of the
// same repetition (they ran within seconds of each other).
func pairedRatio(a, b []*Wave) float64 {
	byRep := map[int]*Wave{}
	for _, w := range b {
		byRep[w.Rep] = w
	}
	var rs []float64
	for _, w := range a {
		if o, ok := byRep[w.Rep]; ok && o.AllRunningS > 0 {
			rs = append(rs, w.AllRunningS/o.AllRunningS)
		}
	}
	return median(rs)
}
