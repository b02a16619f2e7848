{{/*
Names. A release called "stowage" gives "stowage-controller" and "stowage-node" rather than
"stowage-stowage-controller"; cluster-scoped objects (ClusterRoles) carry the release name so that a
second release does not fight over them.
*/}}
{{- define "stowage.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "stowage.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "stowage.controller.fullname" -}}
{{- printf "%s-controller" (include "stowage.fullname" .) -}}
{{- end -}}

{{- define "stowage.node.fullname" -}}
{{- printf "%s-node" (include "stowage.fullname" .) -}}
{{- end -}}

{{- define "stowage.attacher.fullname" -}}
{{- printf "%s-attacher" (include "stowage.fullname" .) -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "stowage.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "stowage.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: stowage
{{- end -}}

{{/*
Selector labels: only stable keys, because a Deployment's or DaemonSet's selector cannot change after
install. Call with (dict "ctx" $ "component" "controller").
*/}}
{{- define "stowage.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stowage.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "stowage.componentLabels" -}}
{{ include "stowage.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "stowage.image" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{/* The socket kubelet dials: the host path of the node plugin's /csi/csi.sock. */}}
{{- define "stowage.node.pluginDir" -}}
{{- printf "%s/plugins/%s" (trimSuffix "/" .Values.node.kubeletDir) .Values.driverName -}}
{{- end -}}

{{/*
Environment both components read: the pod's own name and namespace (leader-election Lease, events)
and the node name (node ID, local provisioning of this node's claims only).
*/}}
{{- define "stowage.downwardEnv" -}}
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end -}}

{{- define "stowage.snapshotController.fullname" -}}
{{- printf "%s-snapshot-controller" (include "stowage.fullname" .) -}}
{{- end -}}
