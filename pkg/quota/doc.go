// Package quota enforces per-directory size limits with Linux project
// quotas on XFS and ext4: a directory gets a project ID (inherited by
// everything created inside it) and the filesystem caps the blocks charged
// to that project. The kernel then refuses writes past the limit with
// EDQUOT, and statfs on the directory reports the limit as the size.
package quota
