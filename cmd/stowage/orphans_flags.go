package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/stowage-csi/stowage/pkg/orphans"
)

// orphanFlags configure the orphan reconciler (pkg/orphans).
type orphanFlags struct {
	interval    time.Duration
	grace       time.Duration
	removeAfter time.Duration
}

func (o *orphanFlags) bind(fs *flag.FlagSet) {
	fs.DurationVar(&o.interval, "orphans-interval", orphans.DefaultInterval,
		"how often volumes that no PersistentVolume uses are looked for (with the provisioner); 0 turns the reconciler off")
	fs.DurationVar(&o.grace, "orphans-grace", orphans.DefaultGrace,
		"a volume younger than this is never an orphan: it may be being provisioned right now")
	fs.DurationVar(&o.removeAfter, "orphans-remove-after", 0,
		"remove orphans older than this through DeleteVolume (their class's onDelete applies: retain keeps the data); 0 only reports them")
}

func (o *orphanFlags) check() error {
	if o.interval < 0 || o.grace < 0 || o.removeAfter < 0 {
		return fmt.Errorf("--orphans-interval, --orphans-grace and --orphans-remove-after must not be negative")
	}
	if o.removeAfter > 0 && o.removeAfter < o.grace {
		return fmt.Errorf("--orphans-remove-after=%s is shorter than --orphans-grace=%s; a volume is an orphan only after the grace period, so raise it to at least %s", o.removeAfter, o.grace, o.grace)
	}
	return nil
}
