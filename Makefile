# Stowage — build, test, run.
#   make build        bin/stowage
#   make lint         gofmt, go vet, staticcheck, shellcheck, helm lint, and that scripts call only installed commands
#   make test         everything CI runs: unit, csi-sanity, chart, integration, e2e (installs what it needs)
#   make e2e-multinode  e2e on a 3-node cluster on this machine (STOWAGE_NODES=N for another count)
#   make demo         a local single-node cluster with Stowage installed and example claims Bound
#   make bench        the benchmarks behind docs/benchmarks.md
SHELL := /bin/bash
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# What the NFS tests need to know of the server `test/nfs/ganesha.sh ensure` gave (see sanity).
NFS_ENV := STOWAGE_TEST_NFS_SERVER=$$STOWAGE_NFS_SERVER STOWAGE_TEST_NFS_SHARE=$$STOWAGE_NFS_SHARE STOWAGE_TEST_NFS_DIR=$$STOWAGE_NFS_EXPORT_DIR

.PHONY: build lint test deps deps-e2e unit quota sanity chart integration e2e e2e-multinode demo down image image-docker bench fuzz clean

build:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o bin/stowage ./cmd/stowage

# deps: Debian packages and the cached Kubernetes binaries every tier but e2e needs (kube-*, kubectl, helm);
# deps-e2e: also e2e.test, agnhost, csi-attacher and snapshot-controller, which only the e2e tier runs.
deps:
	test/cluster/install-deps.sh
	test/cluster/build-binaries.sh k8s helm

deps-e2e: deps
	test/cluster/build-binaries.sh e2e attacher snapshot

test: deps-e2e build lint unit quota sanity chart integration e2e e2e-multinode
	@echo "== all tests passed"

lint:
	hack/lint.sh

unit:
	go vet ./...
	go test -count=1 ./pkg/... ./cmd/...

# quota: local size enforcement on real XFS and ext4 with project quotas. This machine's kernel has no
# quota support, so the tests run under a user-mode Linux kernel (see pkg/quota/testdata/uml-test.sh).
quota:
	sh pkg/quota/testdata/uml-test.sh

# sanity: csi-sanity against both backends plus the NFS backend's own tests, on a real NFS-Ganesha
# (a running one is reused and left running; one started here is stopped at the end); node-side NFS
# mounts go through the test-only mount.nfs inside a private mount namespace.
sanity: build
	@nfs_env=$$(test/nfs/ganesha.sh ensure) && set -a && eval "$$nfs_env" && set +a && \
	trap 'test/nfs/ganesha.sh release >/dev/null' EXIT && \
	$(NFS_ENV) go test -count=1 ./pkg/backend/nfs/ && \
	$(NFS_ENV) test/nfs/in-mount-ns.sh go test -count=1 ./test/nfs/ && \
	go test -c -o bin/sanity.test ./test/sanity/ && \
	(cd test/sanity && ../../bin/sanity.test -test.v -test.run TestLocal -ginkgo.no-color) && \
	(cd test/sanity && $(NFS_ENV) ../nfs/in-mount-ns.sh ../../bin/sanity.test -test.v -test.run TestNFS -ginkgo.no-color)

chart:
	test/chart/check.sh
	go test -count=1 ./test/chart/

integration: build
	STOWAGE_BIN=$(CURDIR)/bin/stowage test/integration/run.sh

e2e: build
	test/e2e/run.sh

e2e-multinode: build
	test/e2e/multinode/run.sh

demo:
	hack/demo.sh

down:
	test/cluster/down.sh

# image: the node/controller image without Docker (an OCI archive imported into containerd);
# image-docker: the same from the Dockerfile, where a Docker engine exists.
image: build
	test/cluster/images.sh build

image-docker:
	docker build -t localhost/stowage:$(VERSION) .

bench:
	test/bench/run.sh

fuzz:
	go test -run XXX -fuzz FuzzParse -fuzztime 30s ./pkg/volumeid/
	go test -run XXX -fuzz FuzzSubDir -fuzztime 30s ./pkg/params/

clean:
	rm -rf bin
