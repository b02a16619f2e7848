// Package nfs is the controller's view of an NFS share: a backend.Store that
// creates, archives, scrubs and deletes volume directories over NFSv3 in
// userspace (github.com/willscott/go-nfs-client), so the controller needs no
// kernel mount and no privileges. Node-side mounts are a separate concern
// (k8s.io/mount-utils and the system's mount.nfs).
//
// What works, and what the server must allow:
//
//   - NFSv3 over TCP. Ports come from the server's portmapper (111). If the
//     portmapper does not answer, NFS is tried on 2049 and MOUNT first on the
//     same connection, then on 20048, the usual fixed mountd port (NFS-Ganesha's
//     default; Linux knfsd when rpc.mountd is pinned to it). Seen working with
//     NFS-Ganesha and rpcbind stopped. Options.NFSPort / Options.MountPort skip
//     discovery. NFSv4-only servers (no MOUNT, no v3) cannot be reached this way.
//   - Calls use AUTH_SYS as uid 0 / gid 0 by default, so the export must not
//     squash root (no_root_squash), or Options.UID/GID must name an owner of
//     the export directory.
//   - As root the library binds a privileged source port (< 1024); as any other
//     user it binds an unprivileged one, which Linux knfsd refuses unless the
//     export says "insecure". NFS-Ganesha accepts both by default.
//
// Concurrency: the library's RPC client has races between its reply
// dispatcher and disconnect handling, retries a lost reply up to 100 times
// and takes no context. So each connection runs one NFS procedure at a time
// (a one-slot semaphore), every procedure runs under a context with a
// deadline, and a connection whose procedure outlives that deadline by a few
// seconds, fails at the transport level, or panics is retired and replaced by
// a fresh dial on next use. Long operations (RemoveAll of a big tree) take
// the connection per procedure, not for the whole operation, so they
// interleave with others instead of blocking them. Throughput per share is
// therefore one procedure at a time (about 0.2 ms each against NFS-Ganesha on
// loopback); a volume create + delete costs about 1.6 ms (BenchmarkMkdirRmdir).
package nfs
