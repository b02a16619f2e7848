package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseVariants(t *testing.T) {
	o := options{class: "stowage-local"}
	for _, tc := range []struct {
		list, want, err string
	}{
		{list: "emptydir,static,claim", want: "emptydir,static,claim"},
		{list: " claim , emptydir,inline,local-path,local-path-tuned", want: "claim,emptydir,inline,local-path,local-path-tuned"},
		{list: "emptydir,claim,emptydir", err: "twice"},
		{list: "emptydir,localpath", err: `unknown variant "localpath"`},
		{list: "claim,inline", err: "has no emptydir"},
	} {
		vs, err := parseVariants(o, tc.list)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one containing %q", tc.list, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.list, err)
		}
		var names []string
		for _, v := range vs {
			names = append(names, v.name)
		}
		if got := strings.Join(names, ","); got != tc.want {
			t.Errorf("%q: variants %s, want %s", tc.list, got, tc.want)
		}
	}
}

func TestVariantKinds(t *testing.T) {
	o := options{class: "stowage-local"}
	for _, tc := range []struct {
		name        string
		class       string
		inline      bool
		deletes     bool
		claimPrefix string
	}{
		{vEmptyDir, "", false, false, "e"},
		{vStatic, staticClass, false, false, "s"},
		{vClaim, "stowage-local", false, true, "c"},
		{vInline, "", true, false, "i"},
		{vLocalPath, "local-path", false, true, "l"},
		{vLocalPathTuned, "local-path-tuned", false, true, "t"},
	} {
		v, err := o.variant(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if v.class != tc.class || v.inline != tc.inline || v.deletes != tc.deletes || v.prefix != tc.claimPrefix {
			t.Errorf("%s: %+v", tc.name, v)
		}
	}
	// Distinct prefixes: pods and claims of two variants must never share a name.
	seen := map[string]string{}
	for _, n := range allVariants {
		v, _ := o.variant(n)
		if other, ok := seen[v.prefix]; ok {
			t.Errorf("%s and %s share prefix %q", n, other, v.prefix)
		}
		seen[v.prefix] = n
	}
}

func TestRotation(t *testing.T) {
	vs, err := parseVariants(options{class: "x"}, "emptydir,static,claim,inline,local-path")
	if err != nil {
		t.Fatal(err)
	}
	firsts := map[string]int{}
	for rep := range len(vs) {
		r := rotation(vs, rep)
		var names []string
		for _, v := range r {
			names = append(names, v.name)
		}
		sorted := slices.Clone(names)
		slices.Sort(sorted)
		if len(slices.Compact(sorted)) != len(vs) {
			t.Fatalf("rep %d runs %v: not every variant once", rep, names)
		}
		firsts[names[0]]++
	}
	for _, v := range vs {
		if firsts[v.name] != 1 {
			t.Errorf("%s ran first in %d of %d repetitions, want 1", v.name, firsts[v.name], len(vs))
		}
	}
	// The old three-variant order is kept: rep 1 is claim, emptydir, static.
	three, _ := parseVariants(options{class: "x"}, "emptydir,static,claim")
	r := rotation(three, 1)
	if r[0].name != vClaim || r[1].name != vEmptyDir || r[2].name != vStatic {
		t.Errorf("rep 1 of the three: %s %s %s", r[0].name, r[1].name, r[2].name)
	}
}

func waves(name string, secs ...float64) []*Wave {
	var ws []*Wave
	for i, s := range secs {
		ws = append(ws, &Wave{Variant: name, Rep: i, AllRunningS: s, P50S: s / 2, P99S: s})
	}
	return ws
}

func TestSummarizeVariants(t *testing.T) {
	for _, tc := range []struct {
		n         int
		inline    []float64
		wantMet   *bool
		wantRatio float64
	}{
		{n: 1, inline: []float64{1.0, 1.05, 2.0}, wantMet: ptr(true), wantRatio: 1.05},
		{n: 10, inline: []float64{1.2, 1.3, 1.2}, wantMet: ptr(false), wantRatio: 1.2},
		{n: 50, inline: []float64{1.2, 1.3, 1.2}, wantMet: nil, wantRatio: 1.2},
	} {
		r := &Result{N: tc.n}
		for _, w := range waves(vEmptyDir, 1, 1, 1) {
			r.add(vEmptyDir, w, nil)
		}
		for _, w := range waves(vClaim, 2, 2, 2) {
			r.add(vClaim, w, &DeleteWave{Rep: w.Rep, AllGoneS: 0.5})
		}
		for _, w := range waves(vInline, tc.inline...) {
			r.add(vInline, w, nil)
		}
		for _, w := range waves(vLocalPath, 8, 4, 6) {
			r.add(vLocalPath, w, &DeleteWave{Rep: w.Rep, AllGoneS: 5})
		}
		summarize(r)
		in := r.Variants[vInline]
		if in.RatioEmptyDir != tc.wantRatio || in.Delete != nil {
			t.Errorf("N=%d inline: ratio %v (want %v), delete %+v", tc.n, in.RatioEmptyDir, tc.wantRatio, in.Delete)
		}
		if (in.Met == nil) != (tc.wantMet == nil) || (in.Met != nil && *in.Met != *tc.wantMet) {
			t.Errorf("N=%d inline: met %v, want %v", tc.n, in.Met, tc.wantMet)
		}
		lp := r.Variants[vLocalPath]
		if lp.MedianS != 6 || lp.StowageRatio != 2.0/6 || lp.Delete == nil || lp.Delete.MedianS != 5 || lp.StowageDeleteRatio != 0.1 {
			t.Errorf("N=%d local-path: %+v, delete %+v", tc.n, lp, lp.Delete)
		}
		if lp.Met != nil || lp.Target != 0 {
			t.Errorf("N=%d local-path has a target: %+v", tc.n, lp)
		}
		// The three of before stay where readers of older results find them.
		if r.Start.ClaimMedianS != 2 || r.Start.Ratio != 2 || r.Delete.MedianS != 0.5 || r.Variants[vClaim] != nil {
			t.Errorf("N=%d legacy fields: start %+v delete %+v", tc.n, r.Start, r.Delete)
		}
	}
}

func ptr[T any](v T) *T { return &v }
