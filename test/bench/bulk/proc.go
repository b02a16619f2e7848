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

// ProcStats is what one process, or a group of processes taken together,
// used over a measured interval.
type ProcStats struct {
	PID  int   `json:"pid"`            // the first of PIDs
	PIDs []int `json:"pids,omitempty"` // a group: its members, each also in Result.Processes
	// CPUSeconds: utime+stime of the process and of its children it reaped
	// (/proc/<pid>/stat fields 14-17), so mount(8) and the helpers a driver
	// execs count as its work.
	CPUSeconds float64 `json:"cpu_s"`
	// ChildCPUSeconds: the children's part of CPUSeconds.
	ChildCPUSeconds float64 `json:"children_cpu_s"`
	// VmHWMKiB is the kernel's peak RSS (a group: the sum of its members'
	// peaks); reset at the start of the interval through
	// /proc/<pid>/clear_refs (5) when allowed (HWMReset).
	VmHWMKiB int64 `json:"vmhwm_kib"`
	HWMReset bool  `json:"vmhwm_reset"`
	VmRSSKiB int64 `json:"vmrss_kib"` // at the end
	// SampledPeakKiB: the largest VmRSS (a group: the largest sum of its
	// members' VmRSS) seen by sampling every 100 ms.
	SampledPeakKiB int64 `json:"sampled_peak_rss_kib"`
}

type procWatch struct {
	pids   []int
	ticks  []cpu
	peaks  []int64
	reset  bool
	stopc  chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	sumMax int64
}

type cpu struct{ self, children int64 }

// startProc starts measuring the processes; none: nil.
func startProc(pids []int) *procWatch {
	if len(pids) == 0 {
		return nil
	}
	p := &procWatch{pids: pids, ticks: make([]cpu, len(pids)), peaks: make([]int64, len(pids)), stopc: make(chan struct{}), reset: true}
	for i, pid := range pids {
		if os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) != nil {
			p.reset = false
		}
		p.ticks[i], _ = cpuTicks(pid)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			p.sample()
			select {
			case <-p.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *procWatch) sample() {
	var sum int64
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, pid := range p.pids {
		if st, err := status(pid); err == nil {
			p.peaks[i] = max(p.peaks[i], st["VmRSS"])
			sum += st["VmRSS"]
		}
	}
	p.sumMax = max(p.sumMax, sum)
}

// stop ends the interval: the group's total, and each member when there
// are several.
func (p *procWatch) stop() (total *ProcStats, each []ProcStats) {
	if p == nil {
		return nil, nil
	}
	close(p.stopc)
	p.wg.Wait()
	p.sample()
	total = &ProcStats{PID: p.pids[0], HWMReset: p.reset, SampledPeakKiB: p.sumMax}
	for i, pid := range p.pids {
		end, _ := cpuTicks(pid)
		st, _ := status(pid)
		one := ProcStats{
			PID: pid, CPUSeconds: float64(end.self+end.children-p.ticks[i].self-p.ticks[i].children) / clkTck,
			ChildCPUSeconds: float64(end.children-p.ticks[i].children) / clkTck,
			VmHWMKiB:        st["VmHWM"], HWMReset: p.reset, VmRSSKiB: st["VmRSS"], SampledPeakKiB: p.peaks[i],
		}
		each = append(each, one)
		total.CPUSeconds += one.CPUSeconds
		total.ChildCPUSeconds += one.ChildCPUSeconds
		total.VmHWMKiB += one.VmHWMKiB
		total.VmRSSKiB += one.VmRSSKiB
	}
	if len(p.pids) == 1 {
		return total, nil
	}
	total.PIDs = p.pids
	return total, each
}

// cpuTicks reads a process's own CPU time and that of its reaped children.
func cpuTicks(pid int) (cpu, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return cpu{}, err
	}
	// The command name may hold spaces; fields count from after its ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// f[0] is field 3 (state): utime, stime, cutime, cstime are fields 14-17.
	var v [4]int64
	for i := range v {
		if v[i], err = strconv.ParseInt(f[11+i], 10, 64); err != nil {
			return cpu{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
		}
	}
	return cpu{self: v[0] + v[1], children: v[2] + v[3]}, nil
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
