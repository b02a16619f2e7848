//go:build linux

package quota

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is the filesystem a path lives on, as /proc/self/mountinfo shows it.
type Mount struct {
	Point   string // mount point
	FSType  string // e.g. xfs, ext4, tmpfs
	Source  string // block device, e.g. /dev/sdb1
	Options string // mount and superblock options, comma separated
}

// FindMount returns the mount that holds path. It matches on the device
// number as well as the path prefix, so a base path that is itself a bind
// mount or sits under a symlink still resolves to the right filesystem.
func FindMount(path string) (Mount, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return Mount{}, fmt.Errorf("resolve %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(real, &st); err != nil {
		return Mount{}, fmt.Errorf("stat %s: %w", real, err)
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))

	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return Mount{}, fmt.Errorf("find the filesystem of %s: %w", path, err)
	}
	defer f.Close()
	var best Mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		m, mdev, ok := parseMountinfo(sc.Text())
		if !ok || mdev != dev || !under(real, m.Point) {
			continue
		}
		if len(m.Point) >= len(best.Point) {
			best = m // later entries over the same point shadow earlier ones
		}
	}
	if err := sc.Err(); err != nil {
		return Mount{}, fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	if best.Point == "" {
		return Mount{}, fmt.Errorf("no entry in /proc/self/mountinfo for %s (device %s)", path, dev)
	}
	return best, nil
}

// parseMountinfo splits one line: "id parent maj:min root point opts
// [optional...] - fstype source superopts".
func parseMountinfo(line string) (Mount, string, bool) {
	fields := strings.Fields(line)
	sep := -1
	for i := 6; i < len(fields); i++ {
		if fields[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || sep+3 > len(fields) {
		return Mount{}, "", false
	}
	return Mount{
		Point:   unescape(fields[4]),
		FSType:  fields[sep+1],
		Source:  unescape(fields[sep+2]),
		Options: fields[5] + "," + fields[sep+3],
	}, fields[2], true
}

// unescape undoes the octal escapes (\040 for space) mountinfo uses.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func under(path, point string) bool {
	return point == "/" || path == point || strings.HasPrefix(path, point+"/")
}
