package main

import (
	"fmt"
	"os"
	"sort"
	"time"
)

// Tenth is one tenth of a run's claims by creation order.
type Tenth struct {
	Claims  int     `json:"claims"`
	MedianS float64 `json:"median_s"`
	MaxS    float64 `json:"max_s"`
	OK      bool    `json:"ok"` // MaxS <= 2 × MedianS
}

// tailRule splits the claims into tenths by when their create call began
// and checks each tenth's slowest claim against twice its median: claims
// created late wait behind the earlier ones, so one median for the whole
// run would call every late claim slow. Runs under 100 claims have no
// tenths: a tenth of one claim is its own median.
func tailRule(latencies []float64, created []time.Time) ([]Tenth, *bool) {
	n := len(latencies)
	if n < 100 || len(created) != n {
		return nil, nil
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return created[order[a]].Before(created[order[b]]) })
	all := true
	var tenths []Tenth
	for t := 0; t < 10; t++ {
		lo, hi := t*n/10, (t+1)*n/10
		s := make([]float64, 0, hi-lo)
		for _, i := range order[lo:hi] {
			s = append(s, latencies[i])
		}
		sort.Float64s(s)
		med := s[len(s)/2]
		if len(s)%2 == 0 {
			med = (s[len(s)/2-1] + s[len(s)/2]) / 2
		}
		tn := Tenth{Claims: len(s), MedianS: med, MaxS: s[len(s)-1], OK: s[len(s)-1] <= 2*med}
		all = all && tn.OK
		tenths = append(tenths, tn)
	}
	return tenths, &all
}

func printTail(mode string, n int, r *Result) {
	if r.TailRuleOK == nil {
		return
	}
	fmt.Fprintf(os.Stderr, "bulk: %s N=%d all Bound %.2f s; tail rule (max <= 2x median per tenth by creation order): %v\n",
		mode, n, r.AllBoundS, *r.TailRuleOK)
	for i, t := range r.Tenths {
		fmt.Fprintf(os.Stderr, "  tenth %2d: %d claims, median %.3f s, max %.3f s (%.2fx) %s\n",
			i+1, t.Claims, t.MedianS, t.MaxS, t.MaxS/t.MedianS, map[bool]string{true: "ok", false: "SLOWER THAN 2x"}[t.OK])
	}
}
