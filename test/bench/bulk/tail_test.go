package main

import (
	"testing"
	"time"
)

func TestTailRule(t *testing.T) {
	t0 := time.Now()
	mk := func(lat func(i int) float64) ([]float64, []time.Time) {
		l, c := make([]float64, 100), make([]time.Time, 100)
		for i := range l {
			// Created in reverse index order, so the tenths follow creation
			// time, not the slice's order.
			c[i] = t0.Add(time.Duration(99-i) * time.Millisecond)
			l[i] = lat(i)
		}
		return l, c
	}
	// Latency grows with creation order: every tenth is even within itself.
	l, c := mk(func(i int) float64 { return float64(100-i) / 10 })
	tenths, ok := tailRule(l, c)
	if ok == nil || !*ok || len(tenths) != 10 {
		t.Fatalf("growing latencies: ok=%v tenths=%+v", ok, tenths)
	}
	if tenths[0].MaxS >= tenths[9].MedianS {
		t.Fatalf("tenths not in creation order: first %+v last %+v", tenths[0], tenths[9])
	}
	// One claim 3x its tenth's median.
	l, c = mk(func(i int) float64 { return 1 })
	l[50] = 3
	_, ok = tailRule(l, c)
	if ok == nil || *ok {
		t.Fatalf("a claim at 3x its tenth's median passed the rule")
	}
	if tenths, ok := tailRule(l[:99], c[:99]); tenths != nil || ok != nil {
		t.Fatalf("99 claims gave tenths %+v", tenths)
	}
}
