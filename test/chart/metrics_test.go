package chart

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/wrapperspb"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/stowage-csi/stowage/pkg/metrics"
)

const monitoringGroup = "monitoring.coreos.com"

// fieldsOf are the fields the chart may set in prometheus-operator objects, by path; anything else is
// a typo the operator would drop, which the strict decoding of Kubernetes kinds catches for them.
var fieldsOf = map[string][]string{
	"":                    {"apiVersion", "kind", "metadata", "spec"},
	"spec/ServiceMonitor": {"namespaceSelector", "selector", "endpoints"},
	"spec/PodMonitor":     {"namespaceSelector", "selector", "podMetricsEndpoints"},
	"spec/PrometheusRule": {"groups"},
	"endpoint":            {"port", "path", "interval"},
	"group":               {"name", "rules"},
	"rule":                {"alert", "expr", "for", "labels", "annotations"},
	"metadata":            {"name", "namespace", "labels"},
	"namespaceSelector":   {"matchNames"},
	"selector":            {"matchLabels"},
}

// decodeMonitoring reads a prometheus-operator object, which client-go has no types for, refusing
// fields the chart has no business setting. Any other kind keeps notRegistered, its decoding error.
func decodeMonitoring(doc []byte, notRegistered error) (runtime.Object, *schema.GroupVersionKind, error) {
	js, err := utilyaml.ToJSON(doc)
	if err != nil {
		return nil, nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		return nil, nil, err
	}
	gvk := u.GroupVersionKind()
	if gvk.Group != monitoringGroup {
		return nil, &gvk, notRegistered
	}
	check := func(where string, m map[string]any, allowed []string) error {
		for k := range m {
			if !slices.Contains(allowed, k) {
				return fmt.Errorf("%s %s: unknown field %s.%s", u.GetKind(), u.GetName(), where, k)
			}
		}
		return nil
	}
	spec, _ := u.Object["spec"].(map[string]any)
	errs := []error{
		check("", u.Object, fieldsOf[""]),
		check("metadata", u.Object["metadata"].(map[string]any), fieldsOf["metadata"]),
		check("spec", spec, fieldsOf["spec/"+u.GetKind()]),
	}
	for _, key := range []string{"selector", "namespaceSelector"} {
		if m, ok := spec[key].(map[string]any); ok {
			errs = append(errs, check(key, m, fieldsOf[key]))
		}
	}
	for _, key := range []string{"endpoints", "podMetricsEndpoints"} {
		eps, _ := spec[key].([]any)
		for _, e := range eps {
			errs = append(errs, check(key, e.(map[string]any), fieldsOf["endpoint"]))
		}
	}
	groups, _ := spec["groups"].([]any)
	for _, g := range groups {
		errs = append(errs, check("groups", g.(map[string]any), fieldsOf["group"]))
		rules, _ := g.(map[string]any)["rules"].([]any)
		for _, r := range rules {
			errs = append(errs, check("rules", r.(map[string]any), fieldsOf["rule"]))
		}
	}
	for _, err := range errs {
		if err != nil {
			return nil, &gvk, err
		}
	}
	return u, &gvk, nil
}

func monitoring(objs objects, kind string) []*unstructured.Unstructured {
	var found []*unstructured.Unstructured
	for _, o := range objs.all {
		if u, ok := o.(*unstructured.Unstructured); ok && u.GetKind() == kind {
			found = append(found, u)
		}
	}
	return found
}

func subset(small, big map[string]string) bool {
	for k, v := range small {
		if big[k] != v {
			return false
		}
	}
	return len(small) > 0
}

// podTemplates are the pod templates of the two components.
func podTemplates(t *testing.T, objs objects) map[string]corev1.PodTemplateSpec {
	return map[string]corev1.PodTemplateSpec{
		"controller": must[*appsv1.Deployment](t, objs, "stowage-controller").Spec.Template,
		"node":       must[*appsv1.DaemonSet](t, objs, "stowage-node").Spec.Template,
	}
}

func TestMetricsServicesByDefault(t *testing.T) {
	objs := render(t)
	for component, pod := range podTemplates(t, objs) {
		svc := must[*corev1.Service](t, objs, "stowage-"+component+"-metrics")
		if !subset(svc.Spec.Selector, pod.Labels) {
			t.Errorf("%s: selector %v does not select the pods (labels %v)", svc.Name, svc.Spec.Selector, pod.Labels)
		}
		c := container(t, pod.Spec, "stowage")
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" ||
			svc.Spec.Ports[0].TargetPort.StrVal != c.Ports[0].Name || svc.Spec.Ports[0].Port != c.Ports[0].ContainerPort {
			t.Errorf("%s: ports %+v, want one named metrics onto container port %+v", svc.Name, svc.Spec.Ports, c.Ports[0])
		}
		if !hasArg(c, fmt.Sprintf("--health-addr=:%d", c.Ports[0].ContainerPort)) {
			t.Errorf("%s: /metrics is served on --health-addr, which is not container port %d: %v", component, c.Ports[0].ContainerPort, c.Args)
		}
	}
	for _, kind := range []string{"ServiceMonitor", "PodMonitor", "PrometheusRule"} {
		if n := len(monitoring(objs, kind)); n != 0 {
			t.Errorf("%d %s rendered by default; they need prometheus-operator and are off by default", n, kind)
		}
	}
}

func TestServiceMonitors(t *testing.T) {
	objs := render(t, "values/metrics.yaml")
	monitors := monitoring(objs, "ServiceMonitor")
	if len(monitors) != 2 {
		t.Fatalf("%d ServiceMonitors, want one per component", len(monitors))
	}
	for _, m := range monitors {
		component := strings.TrimPrefix(m.GetName(), "stowage-")
		svc := must[*corev1.Service](t, objs, "stowage-"+component+"-metrics")
		sel, _, _ := unstructured.NestedStringMap(m.Object, "spec", "selector", "matchLabels")
		if !subset(sel, svc.Labels) {
			t.Errorf("%s selects %v, which the Service %s (labels %v) does not have", m.GetName(), sel, svc.Name, svc.Labels)
		}
		if m.GetLabels()["release"] != "kube-prometheus-stack" {
			t.Errorf("%s lacks metrics.serviceMonitor.labels: %v", m.GetName(), m.GetLabels())
		}
		eps, _, _ := unstructured.NestedSlice(m.Object, "spec", "endpoints")
		if len(eps) != 1 || eps[0].(map[string]any)["port"] != "metrics" || eps[0].(map[string]any)["interval"] != "15s" {
			t.Errorf("%s endpoints %v, want port metrics every 15s", m.GetName(), eps)
		}
	}
}

func TestPodMonitors(t *testing.T) {
	objs := render(t, "values/metrics-podmonitor.yaml")
	if _, ok := find[*corev1.Service](objs, "stowage-node-metrics"); ok {
		t.Error("metrics.service.enabled: false still renders the Services")
	}
	pods := podTemplates(t, objs)
	monitors := monitoring(objs, "PodMonitor")
	if len(monitors) != 2 {
		t.Fatalf("%d PodMonitors, want one per component", len(monitors))
	}
	for _, m := range monitors {
		pod := pods[strings.TrimPrefix(m.GetName(), "stowage-")]
		sel, _, _ := unstructured.NestedStringMap(m.Object, "spec", "selector", "matchLabels")
		if !subset(sel, pod.Labels) {
			t.Errorf("%s selects %v, not the pods (labels %v)", m.GetName(), sel, pod.Labels)
		}
		eps, _, _ := unstructured.NestedSlice(m.Object, "spec", "podMetricsEndpoints")
		port := container(t, pod.Spec, "stowage").Ports[0].Name
		if len(eps) != 1 || eps[0].(map[string]any)["port"] != port || eps[0].(map[string]any)["path"] != "/metrics" {
			t.Errorf("%s endpoints %v, want /metrics on container port %s", m.GetName(), eps, port)
		}
	}
}

// exposedMetrics are the names of every metric Stowage serves, made to appear by using each once.
func exposedMetrics(t *testing.T) map[string]bool {
	metrics.Observe("chart-test", time.Now(), nil)
	metrics.Record(&csi.NodeGetVolumeStatsRequest{VolumeId: "chart-test"},
		&csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{{Unit: csi.VolumeUsage_BYTES, Used: 1, Total: 2}}}, nil)
	metrics.Record(&csi.GetCapacityRequest{}, &csi.GetCapacityResponse{AvailableCapacity: 1, MaximumVolumeSize: wrapperspb.Int64(1)}, nil)
	stop := metrics.CountVolumes(corelisters.NewPersistentVolumeLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, nil)), driver)
	defer stop()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+suffix] = true
			}
		}
	}
	return names
}

func TestPrometheusRule(t *testing.T) {
	objs := render(t, "values/metrics.yaml")
	rules := monitoring(objs, "PrometheusRule")
	if len(rules) != 1 {
		t.Fatalf("%d PrometheusRules, want 1", len(rules))
	}
	if rules[0].GetLabels()["release"] != "kube-prometheus-stack" {
		t.Errorf("PrometheusRule lacks metrics.prometheusRule.labels: %v", rules[0].GetLabels())
	}
	exposed := exposedMetrics(t)
	groups, _, _ := unstructured.NestedSlice(rules[0].Object, "spec", "groups")
	alerts := map[string]string{}
	for _, g := range groups {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			rule := r.(map[string]any)
			name, expr := rule["alert"].(string), rule["expr"].(string)
			alerts[name] = expr
			for _, m := range regexp.MustCompile(`stowage_[a-z_]+`).FindAllString(expr, -1) {
				if !exposed[m] {
					t.Errorf("alert %s uses %s, which Stowage does not expose", name, m)
				}
			}
			if rule["labels"].(map[string]any)["severity"] == nil || rule["annotations"].(map[string]any)["description"] == nil {
				t.Errorf("alert %s needs a severity and a description", name)
			}
		}
	}
	want := []string{"StowageCapacityLow", "StowageOperationErrors", "StowageRecycleFailing", "StowageVolumeAlmostFull", "StowageVolumesFailed"}
	if got := keys(alerts); !slices.Equal(got, want) {
		t.Errorf("alerts %v, want %v", got, want)
	}
	// Thresholds come from the values, as plain numbers PromQL reads (not 5.36870912e+09).
	for alert, threshold := range map[string]string{
		"StowageCapacityLow": "< 5368709120", "StowageVolumeAlmostFull": "> 0.9", "StowageOperationErrors": "> 0.05",
	} {
		if !strings.Contains(alerts[alert], threshold) {
			t.Errorf("alert %s: %q does not compare with %s", alert, alerts[alert], threshold)
		}
	}
}
