package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A result written before the inline and local-path variants, and one with them.
const (
	podsOld = `{"n": 1, "start": {"emptydir_median_s": 1.0, "static_median_s": 2.0, "claim_median_s": 2.1}, "delete": {"median_s": 0.1}}`
	podsNew = `{"n": 10, "start": {"emptydir_median_s": 4.0, "static_median_s": 5.0, "claim_median_s": 6.0}, "delete": {"median_s": 0.6},
	  "variants": {
	    "inline": {"median_s": 4.2, "ratio_emptydir": 1.05, "target_ratio": 1.1, "met": true},
	    "local-path": {"median_s": 18.0, "delete": {"median_s": 14.0}},
	    "local-path-tuned": {"median_s": 12.0, "delete": {"median_s": 9.0}}}}`
)

func TestPodsPart(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"pods-1.json": podsOld, "pods-10.json": podsNew} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var md strings.Builder
	if err := podsPart(dir, &md); err != nil {
		t.Fatal(err)
	}
	out := md.String()
	for _, want := range []string{
		"| 1 | 1.00 s | 2.00 s | 2.10 s | — | — | — | 2.10× | — | — |",
		"| 10 | 4.00 s | 5.00 s | 6.00 s | 4.20 s | 18.00 s | 12.00 s | 1.50× | 1.05× met | 0.33× |",
		"| 1 | 0.10 s | — | — |",
		"| 10 | 0.60 s | 14.00 s | 9.00 s |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	for _, png := range []string{"pods-vs-n.png", "pods-delete-vs-n.png"} {
		if st, err := os.Stat(filepath.Join(dir, png)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", png, err)
		}
	}
}

func TestPodsPartNoResults(t *testing.T) {
	var md strings.Builder
	if err := podsPart(t.TempDir(), &md); err != nil || md.Len() != 0 {
		t.Errorf("no pods files: err %v, summary %q", err, md.String())
	}
}
