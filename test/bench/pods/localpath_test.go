package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// The peer's manifest cannot be applied here without a cluster, so it is
// decoded strictly (an unknown or misspelt field fails) and checked for what
// the bench and local-path-provisioner v0.0.37 rely on.

const localPathManifest = "../peers/local-path.yaml"

func decodeStrict(t *testing.T, data []byte) []runtime.Object {
	t.Helper()
	s := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, _, err := s.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("decode %q...: %v", firstLine(doc), err)
		}
		objs = append(objs, obj)
	}
}

func TestLocalPathManifest(t *testing.T) {
	data, err := os.ReadFile(localPathManifest)
	if err != nil {
		t.Fatal(err)
	}
	var (
		classes  = map[string]*storagev1.StorageClass{}
		deploys  []*appsv1.Deployment
		cm       *v1.ConfigMap
		sas      = map[string]bool{}
		role     *rbacv1.Role
		subjects []rbacv1.Subject
	)
	for _, obj := range decodeStrict(t, data) {
		switch o := obj.(type) {
		case *storagev1.StorageClass:
			classes[o.Name] = o
		case *appsv1.Deployment:
			deploys = append(deploys, o)
		case *v1.ConfigMap:
			cm = o
		case *v1.ServiceAccount:
			sas[o.Namespace+"/"+o.Name] = true
		case *rbacv1.Role:
			role = o
		case *rbacv1.RoleBinding:
			subjects = append(subjects, o.Subjects...)
		case *rbacv1.ClusterRoleBinding:
			subjects = append(subjects, o.Subjects...)
		}
	}

	// Each of the bench's local-path variants has its class, WaitForFirstConsumer
	// like Stowage's, served by one of the Deployments.
	provisioners := map[string]bool{}
	for _, d := range deploys {
		c := d.Spec.Template.Spec.Containers[0]
		name := "rancher.io/local-path" // its default
		for _, a := range c.Command {
			if v, ok := strings.CutPrefix(a, "--provisioner-name="); ok {
				name = v
			}
		}
		provisioners[name] = true
		if c.ImagePullPolicy != v1.PullNever || c.Image != "localhost/local-path-provisioner:v0.0.37" {
			t.Errorf("%s: image %s, pull %s: want the image images.sh packs, never pulled", d.Name, c.Image, c.ImagePullPolicy)
		}
		if !slices.Contains(c.Command, "--config=/etc/config/config.json") || len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/etc/config/" {
			t.Errorf("%s: config.json is not read from the mounted ConfigMap: %v %v", d.Name, c.Command, c.VolumeMounts)
		}
		if sa := d.Namespace + "/" + d.Spec.Template.Spec.ServiceAccountName; !sas[sa] {
			t.Errorf("%s runs as %s, which the manifest does not create", d.Name, sa)
		}
	}
	for _, n := range []string{vLocalPath, vLocalPathTuned} {
		v, _ := options{}.variant(n)
		c := classes[v.class]
		if c == nil {
			t.Errorf("variant %s: no StorageClass %s", n, v.class)
			continue
		}
		if c.VolumeBindingMode == nil || *c.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
			t.Errorf("class %s is not WaitForFirstConsumer", c.Name)
		}
		if !provisioners[c.Provisioner] {
			t.Errorf("class %s names provisioner %s, which no Deployment runs (%v)", c.Name, c.Provisioner, provisioners)
		}
	}

	// The helper pods: created, polled, their logs read and deleted in the
	// provisioner's namespace by its ServiceAccount.
	if role == nil {
		t.Fatal("no Role for the helper pods")
	}
	can := func(res, verb string) bool {
		for _, r := range role.Rules {
			if slices.Contains(r.Resources, res) && slices.Contains(r.Verbs, verb) {
				return true
			}
		}
		return false
	}
	for _, rv := range [][2]string{{"pods", "create"}, {"pods", "get"}, {"pods", "delete"}, {"pods/log", "get"}, {"configmaps", "list"}} {
		if !can(rv[0], rv[1]) {
			t.Errorf("Role does not allow %s %s", rv[1], rv[0])
		}
	}
	for _, s := range subjects {
		if !sas[s.Namespace+"/"+s.Name] {
			t.Errorf("a binding names ServiceAccount %s/%s, which the manifest does not create", s.Namespace, s.Name)
		}
	}

	if cm == nil {
		t.Fatal("no ConfigMap local-path-config")
	}
	var cfg struct {
		NodePathMap []struct {
			Node  string   `json:"node"`
			Paths []string `json:"paths"`
		} `json:"nodePathMap"`
	}
	dec := json.NewDecoder(strings.NewReader(cm.Data["config.json"]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	if len(cfg.NodePathMap) != 1 || cfg.NodePathMap[0].Node != "DEFAULT_PATH_FOR_NON_LISTED_NODES" || len(cfg.NodePathMap[0].Paths) != 1 {
		t.Fatalf("config.json nodePathMap: %+v, want one path for every node", cfg.NodePathMap)
	}
	// run.sh moves it with the cluster by replacing this prefix.
	if p := cfg.NodePathMap[0].Paths[0]; !strings.HasPrefix(p, "/tmp/stowage-cluster/") || filepath.Clean(p) != p {
		t.Errorf("nodePathMap path %s is not a clean path under /tmp/stowage-cluster/", p)
	}
	for _, k := range []string{"setup", "teardown"} {
		if !strings.HasPrefix(cm.Data[k], "#!/bin/sh") || !strings.Contains(cm.Data[k], `"$VOL_DIR"`) {
			t.Errorf("script %s: %q", k, cm.Data[k])
		}
	}
	helper := decodeStrict(t, []byte(cm.Data["helperPod.yaml"]))
	if len(helper) != 1 {
		t.Fatalf("helperPod.yaml holds %d objects", len(helper))
	}
	pod, ok := helper[0].(*v1.Pod)
	if !ok {
		t.Fatalf("helperPod.yaml is a %T", helper[0])
	}
	// What v0.0.37 refuses in a template (it adds these itself), and the
	// image every test-cluster node has.
	if len(pod.Spec.Containers) != 1 || len(pod.Spec.Volumes) != 0 || pod.Spec.NodeName != "" || pod.Spec.ServiceAccountName != "" ||
		len(pod.Spec.Containers[0].VolumeMounts) != 0 {
		t.Errorf("helper pod template sets what local-path-provisioner refuses: %+v", pod.Spec)
	}
	if c := pod.Spec.Containers[0]; c.Image != "docker.io/library/busybox:1.37" || c.ImagePullPolicy != v1.PullNever {
		t.Errorf("helper image %s (pull %s), want the cluster's busybox, never pulled", c.Image, c.ImagePullPolicy)
	}
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

func firstLine(doc []byte) string {
	l, _, _ := bytes.Cut(bytes.TrimSpace(stripComments(doc)), []byte("\n"))
	return string(l)
}
