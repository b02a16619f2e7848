// Command pause is the test cluster's pod sandbox image (registry.k8s.io/pause) and the init
// process of the namespace the test node runs in. Either way it is PID 1: it waits, reaps the
// orphans that the kernel hands to it, and exits on SIGINT or SIGTERM, which for the node's
// namespace tears down everything inside.
//
// It is its own module so the main module's `go test ./...` does not carry it.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("stowage test pause")
		return
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	// Children may have exited before the handler existed: their SIGCHLD is gone, reap them now.
	reap()
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
