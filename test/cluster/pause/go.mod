module github.com/stowage-csi/stowage/test/cluster/pause

go 1.22
