{{/*
The chart's name, truncated to 63 characters (the DNS label limit of Kubernetes names).
*/}}
{{- define "nexa.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name every resource starts with: the release name, plus the chart name unless the
release name already contains it. Truncated so that "-router" etc. still fit in 63 characters.
*/}}
{{- define "nexa.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 55 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 55 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 55 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "nexa.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource of the release.
*/}}
{{- define "nexa.labels" -}}
helm.sh/chart: {{ include "nexa.chart" . }}
{{ include "nexa.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: nexa
{{- end }}

{{/*
Selector labels of every resource of the release.
*/}}
{{- define "nexa.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nexa.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of one component's resources. Call with (dict "root" $ "component" "text").
*/}}
{{- define "nexa.componentLabels" -}}
{{ include "nexa.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Selector labels of one component's pods. Call with (dict "root" $ "component" "text").
*/}}
{{- define "nexa.componentSelectorLabels" -}}
{{ include "nexa.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Name of one component's Deployment, Service, HPA, PDB: "<fullname>-<component>".
Call with (dict "root" $ "component" "text").
*/}}
{{- define "nexa.componentName" -}}
{{- printf "%s-%s" (include "nexa.fullname" .root) .component }}
{{- end }}

{{/*
The service account the pods run as.
*/}}
{{- define "nexa.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nexa.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Secret holding the API keys: the user's existing one or the one the chart creates; empty
when there are no keys (the API is then open).
*/}}
{{- define "nexa.apiKeysSecretName" -}}
{{- if .Values.apiKeys.existingSecret }}
{{- .Values.apiKeys.existingSecret }}
{{- else if .Values.apiKeys.keys }}
{{- printf "%s-api-keys" (include "nexa.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The model cache claim's name.
*/}}
{{- define "nexa.modelCacheClaimName" -}}
{{- default (printf "%s-models" (include "nexa.fullname" .)) .Values.modelCache.persistentVolumeClaim.existingClaim }}
{{- end }}

{{/*
A component's image reference. A component's own tag is used as is; otherwise the global tag or
the appVersion, with "-cuda" appended when the component runs on a GPU (the CUDA image variant).
Call with (dict "root" $ "values" .Values.text).
*/}}
{{- define "nexa.image" -}}
{{- $root := .root }}
{{- $values := .values }}
{{- $repository := $values.image.repository }}
{{- $registry := trimSuffix "/" (toString (default "" $root.Values.global.imageRegistry)) }}
{{- if $registry }}
{{- $repository = printf "%s/%s" $registry $repository }}
{{- end }}
{{- $tag := toString (default "" $values.image.tag) }}
{{- if not $tag }}
{{- $tag = toString (default $root.Chart.AppVersion $root.Values.global.imageTag) }}
{{- if dig "gpu" "enabled" false $values }}
{{- $tag = printf "%s-cuda" $tag }}
{{- end }}
{{- end }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{/*
A component's resources, with its GPUs (when enabled) added to the limits as nvidia.com/gpu.
Call with a component's values.
*/}}
{{- define "nexa.resources" -}}
{{- $resources := deepCopy (default dict .resources) }}
{{- if dig "gpu" "enabled" false . }}
{{- $limits := default dict $resources.limits }}
{{- $_ := set $limits "nvidia.com/gpu" (int .gpu.count) }}
{{- $_ := set $resources "limits" $limits }}
{{- end }}
{{- toYaml $resources }}
{{- end }}

{{/*
A component's tolerations, with the NVIDIA device plugin's GPU taint tolerated when it runs on a GPU.
Call with a component's values.
*/}}
{{- define "nexa.tolerations" -}}
{{- $tolerations := default list .tolerations }}
{{- if dig "gpu" "enabled" false . }}
{{- $tolerations = append $tolerations (dict "key" "nvidia.com/gpu" "operator" "Exists" "effect" "NoSchedule") }}
{{- end }}
{{- if $tolerations }}
{{- toYaml $tolerations }}
{{- end }}
{{- end }}

{{/*
The env entries of a component's `env` map (name to value) and `extraEnv` list.
Call with a component's values.
*/}}
{{- define "nexa.extraEnv" -}}
{{- range $name, $value := .env }}
- name: {{ $name }}
  value: {{ toString $value | quote }}
{{- end }}
{{- with .extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Pod-level settings shared by every component's pods. Call with (dict "root" $ "values" .Values.text).
*/}}
{{- define "nexa.podSpecCommon" -}}
{{- $root := .root }}
{{- $values := .values }}
serviceAccountName: {{ include "nexa.serviceAccountName" $root }}
automountServiceAccountToken: {{ $root.Values.serviceAccount.automount }}
{{- with $root.Values.global.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
terminationGracePeriodSeconds: {{ $values.terminationGracePeriodSeconds }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (include "nexa.tolerations" $values) }}
tolerations:
  {{- . | nindent 2 }}
{{- end }}
{{- with $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The probes of a component's container. Call with a component's values.
*/}}
{{- define "nexa.probes" -}}
{{- with .startupProbe }}
startupProbe:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .readinessProbe }}
readinessProbe:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .livenessProbe }}
livenessProbe:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The model services this chart knows, in a fixed order: the modality table of nexa_common
(common/nexa_common/modalities.py); tests/unit/test_modalities.py checks that they agree.
*/}}
{{- define "nexa.modalities" -}}
text image audio
{{- end }}

{{/*
API versions of the kinds that moved out of beta, chosen from what the cluster serves
(.Capabilities.APIVersions: the API server's discovery on install, Helm's built-in set offline),
so that one chart installs on Kubernetes 1.20-1.22 and on current clusters alike.
*/}}
{{- define "nexa.hpaApiVersion" -}}
{{- if .Capabilities.APIVersions.Has "autoscaling/v2" }}autoscaling/v2{{ else }}autoscaling/v2beta2{{ end }}
{{- end }}

{{- define "nexa.pdbApiVersion" -}}
{{- if .Capabilities.APIVersions.Has "policy/v1" }}policy/v1{{ else }}policy/v1beta1{{ end }}
{{- end }}
