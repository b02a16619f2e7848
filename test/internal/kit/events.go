package kit

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// clusterScoped kinds have their events in the default namespace (or wherever the recorder put
// them), not in the test's; Events looks in every namespace for them.
var clusterScoped = map[string]bool{"PersistentVolume": true, "Node": true, "StorageClass": true}

// Events lists the events about the object kind/name (in k.NS unless kind is cluster-scoped) as
// "Reason: message" lines, oldest first as the API returns them. A failed list is returned as
// its one line, since Events mostly feeds failure messages.
func (k Kube) Events(kind, name string) []string {
	ns := k.NS
	if clusterScoped[kind] {
		ns = ""
	}
	list, err := k.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=" + kind + ",involvedObject.name=" + name,
	})
	if err != nil {
		return []string{fmt.Sprintf("(listing events of %s %s: %v)", kind, name, err)}
	}
	out := make([]string, 0, len(list.Items))
	for _, e := range list.Items {
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}

// EventsOf is Events on one line, for a failure message.
func (k Kube) EventsOf(kind, name string) string {
	return strings.Join(k.Events(kind, name), " | ")
}

// WaitEvent waits for an event about kind/name with this reason whose message contains every one
// of wants, and returns that event as "Reason: message".
func (k Kube) WaitEvent(kind, name, reason string, wants ...string) string {
	k.T.Helper()
	var found string
	k.Eventually(fmt.Sprintf("%s event on %s %s mentioning %q", reason, kind, name, wants), func(context.Context) (bool, error) {
		events := k.Events(kind, name)
		for _, e := range events {
			if matches(e, reason, wants) {
				found = e
				return true, nil
			}
		}
		return false, fmt.Errorf("events: %s", strings.Join(events, " | "))
	})
	return found
}

func matches(event, reason string, wants []string) bool {
	if !strings.HasPrefix(event, reason+": ") {
		return false
	}
	for _, w := range wants {
		if !strings.Contains(event, w) {
			return false
		}
	}
	return true
}
