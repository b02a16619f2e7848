package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clkTck is USER_HZ, 100 on every Linux this runs on.
const clkTck = 100

// ProcStats is what one process used over a measured interval.
type ProcStats struct {
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_s"` // utime+stime, /proc/<pid>/stat fields 14 and 15
	// VmHWMKiB is the kernel's peak RSS; reset at the start of the interval
	// through /proc/<pid>/clear_refs (5) when allowed (HWMReset).
	VmHWMKiB int64 `json:"vmhwm_kib"`
	HWMReset bool  `json:"vmhwm_reset"`
	VmRSSKiB int64 `json:"vmrss_kib"` // at the end
	// SampledPeakKiB: the largest VmRSS seen by sampling every 100 ms.
	SampledPeakKiB int64 `json:"sampled_peak_rss_kib"`
}

type procWatch struct {
	pid   int
	ticks int64
	reset bool
	stopc chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	peak  int64
}

func startProc(pid int) *procWatch {
	if pid == 0 {
		return nil
	}
	p := &procWatch{pid: pid, stopc: make(chan struct{})}
	p.reset = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
	p.ticks, _ = cpuTicks(pid)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if st, err := status(pid); err == nil {
				p.mu.Lock()
				p.peak = max(p.peak, st["VmRSS"])
				p.mu.Unlock()
			}
			select {
			case <-p.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *procWatch) stop() *ProcStats {
	if p == nil {
		return nil
	}
	close(p.stopc)
	p.wg.Wait()
	ticks, _ := cpuTicks(p.pid)
	st, _ := status(p.pid)
	return &ProcStats{
		PID: p.pid, CPUSeconds: float64(ticks-p.ticks) / clkTck,
		VmHWMKiB: st["VmHWM"], HWMReset: p.reset, VmRSSKiB: st["VmRSS"], SampledPeakKiB: max(p.peak, st["VmRSS"]),
	}
}

func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; fields count from after its ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return u + k, nil
}

// status reads the kB fields of /proc/<pid>/status.
func status(pid int) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasSuffix(v, " kB") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, " kB")), 10, 64)
		if err == nil {
			m[k] = n
		}
	}
	return m, sc.Err()
}
