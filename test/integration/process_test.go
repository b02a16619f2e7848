package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one stowage process; it can be killed and started again with
// the same flags, which is how the tests crash and restart it.
type proc struct {
	t       *testing.T
	name    string
	args    []string
	env     []string // added to this process's environment
	logPath string
	health  string // host:port of /healthz and /metrics

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	run  int           // how many times it was started
}

// startProc starts bin with args plus a health address, and waits until it
// serves /healthz/provisioner.
func startProc(t *testing.T, logDir, name string, environ []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: args, env: environ, health: freeAddr(t)}
	p.logPath = filepath.Join(logDir, name+".log")
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *proc) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		p.t.Fatalf("%s is already running", p.name)
	}
	p.run++
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(f, "===== start %d: %s %s\n", p.run, env.bin, strings.Join(p.args, " "))
	cmd := exec.Command(env.bin, append(p.args, "--health-addr="+p.health, "--v=4")...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), p.env...)
	// Its own process group: a kill reaches it and nothing else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
	p.mu.Unlock()
	p.waitHealthy()
	p.mu.Lock()
}

// waitHealthy waits until the provisioner's caches are synced (or it waits
// for the lease as a standby).
func (p *proc) waitHealthy() {
	p.t.Helper()
	waiter(p.t, 60*time.Second).Eventually(p.name+" healthy", func(context.Context) (bool, error) {
		if p.exited() {
			p.t.Fatalf("%s exited:\n%s", p.name, p.tail(30))
		}
		resp, err := http.Get("http://" + p.health + "/healthz/provisioner")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, errors.New(resp.Status)
	})
}

func (p *proc) exited() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL: no cleanup, no lease release, like a node crash.
func (p *proc) kill() { p.signal(syscall.SIGKILL) }

// stop sends SIGTERM and waits, as Kubernetes does when it stops a pod.
func (p *proc) stop() { p.signal(syscall.SIGTERM) }

func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// restart starts the process again after kill or stop.
func (p *proc) restart() { p.start() }

// log returns the process's log so far.
func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *proc) tail(n int) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// metrics returns the text of /metrics.
func (p *proc) metrics() (string, error) {
	resp, err := http.Get("http://" + p.health + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		b.WriteString(s.Text())
		b.WriteByte('\n')
	}
	return b.String(), s.Err()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
