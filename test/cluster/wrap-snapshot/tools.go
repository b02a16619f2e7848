//go:build tools

// Package tools pins snapshot-controller, so that `go build
// github.com/kubernetes-csi/external-snapshotter/v8/cmd/snapshot-controller` resolves through this
// module. The released module cannot be built in place: its go.mod replaces client/v8 with ./client,
// a directory its module zip does not contain. Here client/v8 comes at the same release instead.
package tools

import (
	_ "github.com/kubernetes-csi/external-snapshotter/v8/cmd/snapshot-controller"
)
