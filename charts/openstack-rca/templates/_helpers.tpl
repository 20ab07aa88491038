{{/* vim: set filetype=mustache: */}}

{{/* The chart name (nameOverride wins). */}}
{{- define "openstack-rca.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name prefix of every object: fullnameOverride, else <release>-<chart>, or <release> alone when it already
contains the chart name. Kept to 48 characters so the "-chroma-headless" suffix still fits in 63.
*/}}
{{- define "openstack-rca.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "openstack-rca.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "openstack-rca.labels" -}}
helm.sh/chart: {{ include "openstack-rca.chart" . }}
{{ include "openstack-rca.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: openstack-rca
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "openstack-rca.selectorLabels" -}}
app.kubernetes.io/name: {{ include "openstack-rca.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "component" "server"). */}}
{{- define "openstack-rca.componentSelectorLabels" -}}
{{ include "openstack-rca.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All labels of one component's objects. */}}
{{- define "openstack-rca.componentLabels" -}}
{{ include "openstack-rca.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "openstack-rca.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "openstack-rca.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "openstack-rca.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The retrain CronJob's image: the training Bento (bentofile.train.yaml, TensorFlow inside), by default
   image.repository + "-train" at the same tag. The serving image carries no TensorFlow. */}}
{{- define "openstack-rca.trainImage" -}}
{{- $r := .Values.retrain.image }}
{{- printf "%s:%s" (default (printf "%s-train" .Values.image.repository) $r.repository) (default (default .Chart.AppVersion .Values.image.tag) $r.tag) }}
{{- end }}

{{- define "openstack-rca.chromaImage" -}}
{{- if .Values.chroma.image.repository }}
{{- printf "%s:%s" .Values.chroma.image.repository (default (default .Chart.AppVersion .Values.image.tag) .Values.chroma.image.tag) }}
{{- else }}
{{- include "openstack-rca.image" . }}
{{- end }}
{{- end }}

{{- define "openstack-rca.configMapName" -}}
{{- printf "%s-config" (include "openstack-rca.fullname" .) }}
{{- end }}

{{/* The Secret the pods read: the existing one, or the one the chart creates. */}}
{{- define "openstack-rca.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- printf "%s-secrets" (include "openstack-rca.fullname" .) }}
{{- end }}
{{- end }}

{{/* True (non-empty) when the StatefulSet runs: chroma.enabled and no external host. */}}
{{- define "openstack-rca.chromaInCluster" -}}
{{- if and .Values.chroma.enabled (not .Values.chroma.external.host) }}true{{ end }}
{{- end }}

{{- define "openstack-rca.chromaFullname" -}}
{{- printf "%s-chroma" (include "openstack-rca.fullname" .) }}
{{- end }}

{{/* CHROMA_HOST: the external host, the in-cluster Service, or empty (embedded Chroma). */}}
{{- define "openstack-rca.chromaHost" -}}
{{- if .Values.chroma.external.host }}
{{- .Values.chroma.external.host }}
{{- else if .Values.chroma.enabled }}
{{- include "openstack-rca.chromaFullname" . }}
{{- end }}
{{- end }}

{{- define "openstack-rca.chromaPort" -}}
{{- if .Values.chroma.external.host }}
{{- .Values.chroma.external.port }}
{{- else }}
{{- .Values.chroma.port }}
{{- end }}
{{- end }}

{{/* True (non-empty) when the MLflow Deployment runs: mlflow.enabled and no external URI. */}}
{{- define "openstack-rca.mlflowInCluster" -}}
{{- if and .Values.mlflow.enabled (not .Values.mlflow.external.trackingUri) }}true{{ end }}
{{- end }}

{{- define "openstack-rca.mlflowFullname" -}}
{{- printf "%s-mlflow" (include "openstack-rca.fullname" .) }}
{{- end }}

{{- define "openstack-rca.scorerFullname" -}}
{{- printf "%s-scorer" (include "openstack-rca.fullname" .) }}
{{- end }}

{{/* RCA_SCORER_URL of the RCA pods: the scorer's Service, when the scorer runs apart (scorer.enabled). */}}
{{- define "openstack-rca.scorerUrl" -}}
{{- printf "http://%s:%v" (include "openstack-rca.scorerFullname" .) .Values.scorer.port }}
{{- end }}

{{/* MLFLOW_TRACKING_URI: the external server, the in-cluster Service, or empty (sqlite under RCA_HOME). */}}
{{- define "openstack-rca.mlflowTrackingUri" -}}
{{- if .Values.mlflow.external.trackingUri }}
{{- .Values.mlflow.external.trackingUri }}
{{- else if .Values.mlflow.enabled }}
{{- printf "http://%s:%v" (include "openstack-rca.mlflowFullname" .) .Values.mlflow.service.port }}
{{- end }}
{{- end }}

{{/* Where the MLflow server keeps artifacts: S3 when a bucket is set, else its PVC. */}}
{{- define "openstack-rca.mlflowArtifactsDestination" -}}
{{- if .Values.artifacts.bucket }}
{{- if .Values.artifacts.prefix }}
{{- printf "s3://%s/%s" .Values.artifacts.bucket (trimAll "/" .Values.artifacts.prefix) }}
{{- else }}
{{- printf "s3://%s" .Values.artifacts.bucket }}
{{- end }}
{{- else if .Values.mlflow.persistence.enabled }}
{{- print "/mlflow/artifacts" }}
{{- else }}
{{- fail "mlflow: set artifacts.bucket (S3) or mlflow.persistence.enabled, or the tracking server has nowhere to keep artifacts" }}
{{- end }}
{{- end }}

{{/* Pod-level hardening shared by every pod: (dict "ctx" $). */}}
{{- define "openstack-rca.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container-level hardening shared by every container. */}}
{{- define "openstack-rca.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
The secret env of a container that needs the API token, the Chroma token and (optionally) the Anthropic key.
The Anthropic key is optional (offline narrative without it); the Chroma token is optional only with an external
Chroma that may run without auth.
*/}}
{{- define "openstack-rca.secretEnv" -}}
- name: RCA_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "openstack-rca.secretName" . }}
      key: {{ .Values.secrets.keys.apiToken }}
- name: CHROMA_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "openstack-rca.secretName" . }}
      key: {{ .Values.secrets.keys.chromaToken }}
      optional: {{ not (include "openstack-rca.chromaInCluster" .) }}
- name: ANTHROPIC_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "openstack-rca.secretName" . }}
      key: {{ .Values.secrets.keys.anthropicApiKey }}
      optional: true
{{- end }}

{{/* Writable paths of a container running the openstack-rca image (the root filesystem is read-only). */}}
{{- define "openstack-rca.appVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: rca-home
  mountPath: {{ .Values.rcaHome.path }}
- name: bentoml-home
  mountPath: /home/bentoml/bentoml
- name: cache
  mountPath: /home/bentoml/.cache
{{- end }}

{{/* The volumes behind those mounts: (dict "ctx" $ "persistent" true) uses the RCA_HOME PVC when enabled. */}}
{{- define "openstack-rca.appVolumes" -}}
{{- $v := .ctx.Values -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ $v.tmpSizeLimit }}
- name: rca-home
{{- if and $v.rcaHome.persistence.enabled .persistent }}
  persistentVolumeClaim:
    claimName: {{ default (printf "%s-home" (include "openstack-rca.fullname" .ctx)) $v.rcaHome.persistence.existingClaim }}
{{- else }}
  emptyDir:
    sizeLimit: {{ $v.rcaHome.sizeLimit }}
{{- end }}
- name: bentoml-home
  emptyDir:
    sizeLimit: 1Gi
- name: cache
  emptyDir:
    sizeLimit: 2Gi
{{- end }}
