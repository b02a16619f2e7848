// Command bulk measures claim binding on a real control plane: N claims
// created at once (16 parallel creators), or claims one at a time, against
// Stowage's provisioner ("dyn" modes), against a driver users would pick
// instead ("peer" modes: csi-driver-nfs behind external-provisioner, see
// test/bench/peers), or against the floor of the PV controller binding
// pre-made PVs with no provisioner ("floor" modes). It also populates PVs
// for the memory benchmark and samples processes' CPU time and peak RSS
// from /proc.
//
//	bulk -mode floor|dyn -n N           N claims at once; floor pre-creates N PVs first; then all
//	                                    deleted at once until their PVs and directories are gone
//	bulk -mode peer|peer-tuned -n N     N claims at once of the peer's class (the modes differ only in how
//	                                    run.sh started the peer; the name is copied into the result)
//	bulk -mode seq-floor|seq-dyn -n 20  one claim at a time; seq-floor follows each claim with a PV pre-bound to it
//	bulk -mode populate -n N            N PVs of csi.stowage.io, for the memory benchmark
//	bulk -mode nfs-cleanup              remove what dyn runs left in the export (directories and records)
//
// Results go to -out as JSON; test/bench/run.sh drives it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

type options struct {
	kubeconfig string
	mode       string
	n          int
	workers    int
	namespace  string
	class      string
	setting    string
	pids       []int
	out        string
	nfsServer  string
	nfsShare   string
	subDir     string
	exportDir  string
	timeout    time.Duration
	noDelete   bool
}

// Result is one run, as written to JSON.
type Result struct {
	Mode    string `json:"mode"`
	N       int    `json:"n"`
	Setting string `json:"setting"` // e.g. "kcm 20/30"
	Date    string `json:"date"`
	// AllBoundS: from the first claim's create call to the last claim seen Bound.
	AllBoundS float64 `json:"all_bound_s,omitempty"`
	// PVCreateS (floor): time to create the N PVs and see them Available, before the clock starts.
	PVCreateS float64 `json:"pv_create_s,omitempty"`
	// LatenciesS: per claim, from just before its create call to its Bound phase seen by a watch.
	LatenciesS []float64 `json:"latencies_s,omitempty"`
	P50S       float64   `json:"p50_s,omitempty"`
	P99S       float64   `json:"p99_s,omitempty"`
	MaxS       float64   `json:"max_s,omitempty"`
	Bound      int       `json:"bound"`
	// LoadAvg: /proc/loadavg's 1, 5 and 15 minute figures when the
	// claims were created and when the row ended; this machine is shared.
	LoadAvgStart string `json:"loadavg_start,omitempty"`
	LoadAvgEnd   string `json:"loadavg_end,omitempty"`
	// Controller process (-pid), over the measured interval; with several
	// PIDs (the peer: csi-provisioner and nfsplugin) their total, and each
	// one in Processes.
	Proc      *ProcStats  `json:"controller,omitempty"`
	Processes []ProcStats `json:"processes,omitempty"`
	// Tenths and TailRuleOK: the claims split into tenths by creation
	// order; the rule holds when no claim in a tenth took more than twice
	// that tenth's median (issue 13's target for N = 10,000).
	Tenths     []Tenth `json:"tenths,omitempty"`
	TailRuleOK *bool   `json:"tail_rule_ok,omitempty"`
	// The deletion phase (bulk rows): after all claims are Bound, all
	// deleted at once. DeleteWhat says what "gone" means for the row.
	DeleteWhat       string     `json:"delete_what,omitempty"`
	DeleteAllGoneS   float64    `json:"delete_all_gone_s,omitempty"`
	DeleteLatenciesS []float64  `json:"delete_latencies_s,omitempty"`
	DeleteP50S       float64    `json:"delete_p50_s,omitempty"`
	DeleteP99S       float64    `json:"delete_p99_s,omitempty"`
	DeleteMaxS       float64    `json:"delete_max_s,omitempty"`
	DeleteProc       *ProcStats `json:"delete_controller,omitempty"`
}

func main() {
	var o options
	flag.StringVar(&o.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the bench control plane")
	flag.StringVar(&o.mode, "mode", "floor", "floor, dyn, peer, peer-tuned, seq-floor, seq-dyn, populate, nfs-cleanup")
	flag.IntVar(&o.n, "n", 10, "number of claims (or PVs for populate)")
	flag.IntVar(&o.workers, "workers", 16, "parallel creators")
	flag.StringVar(&o.namespace, "namespace", "bench", "namespace of the claims (created if missing)")
	flag.StringVar(&o.class, "class", "", "StorageClass name (default: bench-floor for floor modes, bench-peer for peer modes, bench-nfs otherwise)")
	flag.StringVar(&o.setting, "setting", "", "label of the control-plane setting, copied into the result")
	flag.Func("pid", "controller PID whose CPU time and peak RSS to report; repeat or comma-separate for a group to sum", func(v string) error {
		for _, f := range strings.Split(v, ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || pid <= 0 {
				return fmt.Errorf("-pid %q: want process IDs such as 1234 or 1234,5678", v)
			}
			o.pids = append(o.pids, pid)
		}
		return nil
	})
	flag.StringVar(&o.out, "out", "", "result JSON file (default stdout)")
	flag.StringVar(&o.nfsServer, "nfs-server", "127.0.0.1", "NFS server for the Stowage class")
	flag.StringVar(&o.nfsShare, "nfs-share", "/export", "NFS share for the Stowage class")
	flag.StringVar(&o.subDir, "subdir", "stowage-bench", "directory under the share that holds the bench's volumes")
	flag.StringVar(&o.exportDir, "export-dir", "", "the local directory behind the share: nfs-cleanup lists it, the bulk rows' deletion phase watches volume directories leave it")
	flag.BoolVar(&o.noDelete, "no-delete", false, "bulk rows: skip the deletion phase")
	flag.DurationVar(&o.timeout, "timeout", 20*time.Minute, "give up after this long")
	klog.InitFlags(nil)
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bulk:", err)
		os.Exit(1)
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func run(o options) error {
	if o.mode == "nfs-cleanup" {
		return cleanNFS(o.exportDir, o.nfsServer, o.nfsShare, o.subDir)
	}
	if o.class == "" {
		o.class = "bench-nfs"
		if o.mode == "floor" || o.mode == "seq-floor" {
			o.class = "bench-floor"
		}
		if isPeer(o.mode) {
			o.class = "bench-peer"
		}
	}
	rc, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return err
	}
	// The tool must never be the bottleneck.
	rc.QPS, rc.Burst = 2000, 4000
	rc.UserAgent = "stowage-bench"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	b := &bench{o: o, client: client}
	var res *Result
	switch o.mode {
	case "floor", "dyn", "peer", "peer-tuned":
		res, err = b.bulk(ctx)
	case "seq-floor", "seq-dyn":
		res, err = b.sequential(ctx)
	case "populate":
		res, err = b.populate(ctx)
	default:
		return fmt.Errorf("unknown -mode %q", o.mode)
	}
	if err != nil {
		return err
	}
	res.Mode, res.N, res.Setting, res.Date = o.mode, o.n, o.setting, time.Now().UTC().Format(time.RFC3339)
	res.LoadAvgEnd = loadAvg()
	data, err := json.MarshalIndent(res, "", " ")
	if err != nil {
		return err
	}
	if o.out == "" {
		_, err = os.Stdout.Write(append(data, '\n'))
		return err
	}
	return os.WriteFile(o.out, append(data, '\n'), 0o644)
}
