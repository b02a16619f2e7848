package params

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

var templateVar = regexp.MustCompile(`\$\{([^}]*)\}`)

// templateVars lists the variables a subDir template may use.
var templateVars = []string{"pvc.namespace", "pvc.name", "pv.name"}

// checkTemplate rejects unknown variables and static text that escapes the share.
func checkTemplate(t string) error {
	for _, m := range templateVar.FindAllStringSubmatch(t, -1) {
		if !contains(templateVars, m[1]) {
			return fmt.Errorf("StorageClass parameter %s=%q uses unknown variable ${%s}; use ${pvc.namespace}, ${pvc.name} or ${pv.name}", SubDir, t, m[1])
		}
	}
	// Check the shape with harmless sample values, so that "../x" or "/abs"
	// is refused when the class is first used rather than per claim.
	sample := templateVar.ReplaceAllString(t, "x")
	if err := volumeid.ValidateDir(sample); err != nil {
		return fmt.Errorf("StorageClass parameter %s=%q: %w", SubDir, t, err)
	}
	return nil
}

// VolumeDir expands the subDir template for the volume called name. Values
// come from Kubernetes object names, which cannot contain '/' or "..", but
// each one is still checked so that no input can leave the share.
func (p Params) VolumeDir(name string) (string, error) {
	if p.Backend == volumeid.Local {
		return name, volumeid.ValidateDir(name)
	}
	pvName := p.PVName
	if pvName == "" {
		pvName = name
	}
	values := map[string]string{"pvc.namespace": p.PVCNS, "pvc.name": p.PVCName, "pv.name": pvName}
	var err error
	dir := templateVar.ReplaceAllStringFunc(p.SubDir, func(m string) string {
		key := m[2 : len(m)-1]
		v := values[key]
		switch {
		case v == "":
			err = fmt.Errorf("StorageClass parameter %s=%q needs ${%s}, which this request does not carry (the Stowage provisioner adds it; a bare CSI call must use ${pv.name})", SubDir, p.SubDir, key)
		case strings.ContainsAny(v, "/\\") || v == "." || v == "..":
			err = fmt.Errorf("value %q of ${%s} would escape the share", v, key)
		}
		return v
	})
	if err != nil {
		return "", err
	}
	if err := volumeid.ValidateDir(dir); err != nil {
		return "", fmt.Errorf("StorageClass parameter %s=%q gives %w", SubDir, p.SubDir, err)
	}
	return dir, nil
}
