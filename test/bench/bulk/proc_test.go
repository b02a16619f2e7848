package main

import (
	"os"
	"os/exec"
	"testing"
)

// A driver's mounts run as children it execs and reaps; their CPU must
// count as the driver's.
func TestCPUTicksCountReapedChildren(t *testing.T) {
	before, err := cpuTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Busy until the child has used at least 20 ticks of its own CPU,
	// whatever the machine's speed.
	busy := `while :; do read -r l </proc/$$/stat; set -- $l; [ $((${14} + ${15})) -ge 20 ] && exit 0; done`
	if out, err := exec.Command("sh", "-c", busy).CombinedOutput(); err != nil {
		t.Fatalf("busy child: %v: %s", err, out)
	}
	after, err := cpuTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if got := after.children - before.children; got < 20 {
		t.Errorf("reaped children's CPU grew by %d ticks, want at least the child's 20", got)
	}
}

func TestProcGroupSumsItsMembers(t *testing.T) {
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	pids := []int{os.Getpid(), child.Process.Pid}
	total, each := startProc(pids).stop()
	if len(each) != 2 || len(total.PIDs) != 2 {
		t.Fatalf("group of 2: total %+v, each %+v", total, each)
	}
	var hwm, rss int64
	var cpu float64
	for i, p := range each {
		if p.PID != pids[i] || p.VmHWMKiB <= 0 {
			t.Errorf("member %d: %+v, want PID %d and a peak RSS", i, p, pids[i])
		}
		hwm, rss, cpu = hwm+p.VmHWMKiB, rss+p.VmRSSKiB, cpu+p.CPUSeconds
	}
	if total.VmHWMKiB != hwm || total.VmRSSKiB != rss || total.CPUSeconds != cpu {
		t.Errorf("total %+v is not the sum of %+v", total, each)
	}
	if total.SampledPeakKiB < each[1].SampledPeakKiB {
		t.Errorf("group's sampled peak %d below a member's %d", total.SampledPeakKiB, each[1].SampledPeakKiB)
	}
	one, alone := startProc(pids[:1]).stop()
	if alone != nil || one.PIDs != nil || one.PID != pids[0] {
		t.Errorf("single process: %+v, %+v; want no group fields", one, alone)
	}
}
