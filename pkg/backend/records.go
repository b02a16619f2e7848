package backend

import (
	"bytes"
	"fmt"
	"strings"
)

// The one contract on records that every Store keeps, whatever it keeps
// them in (a symlink's target on local disk, a file over NFS): a record is
// named by a single path element and holds 1 to MaxRecordBytes bytes of
// text without NUL. Records are a few hundred bytes of JSON; the bound keeps
// a planted huge file out of the driver's memory.
const MaxRecordBytes = 4095

// CheckRecordName refuses a name that is not one plain path element.
func CheckRecordName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("record name %q is not a single file name", name)
	}
	return nil
}

// CheckRecord refuses a record a Store must not write.
func CheckRecord(name string, data []byte) error {
	if err := CheckRecordName(name); err != nil {
		return err
	}
	if len(data) == 0 || len(data) > MaxRecordBytes || bytes.IndexByte(data, 0) >= 0 {
		return fmt.Errorf("record %s: %d bytes; a record holds 1 to %d bytes without NUL", name, len(data), MaxRecordBytes)
	}
	return nil
}
