{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "workmail-forwarder.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart unless the release name already contains the chart name. */}}
{{- define "workmail-forwarder.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "workmail-forwarder.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "workmail-forwarder.selectorLabels" -}}
app.kubernetes.io/name: {{ include "workmail-forwarder.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "workmail-forwarder.labels" -}}
helm.sh/chart: {{ include "workmail-forwarder.chart" . }}
{{ include "workmail-forwarder.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "workmail-forwarder.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "workmail-forwarder.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "workmail-forwarder.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The forwarder's config.yaml: .Values.config with the two keys the chart owns, the
telemetry listener (probes and the Service point at metricsPort) and shutdown_grace
(terminationGracePeriodSeconds must exceed it).
*/}}
{{- define "workmail-forwarder.config" -}}
{{- $config := deepCopy .Values.config }}
{{- $telemetry := deepCopy (default (dict) $config.telemetry) }}
{{- $_ := set $telemetry "listen" (printf "0.0.0.0:%d" (int .Values.metricsPort)) }}
{{- $_ = set $config "telemetry" $telemetry }}
{{- $_ = set $config "shutdown_grace" (printf "%ds" (int .Values.shutdownGraceSeconds)) }}
{{- toYaml $config }}
{{- end }}

{{/* Rules values.schema.json cannot express (and a guard for --skip-schema-validation). */}}
{{- define "workmail-forwarder.validate" -}}
{{- $backend := dig "state" "backend" "sqlite" .Values.config }}
{{- if and (gt (int .Values.replicaCount) 1) (ne $backend "dynamodb") }}
{{- fail "replicaCount > 1 needs config.state.backend: dynamodb (replicas must share checkpoints)" }}
{{- end }}
{{- if le (int .Values.terminationGracePeriodSeconds) (int .Values.shutdownGraceSeconds) }}
{{- fail "terminationGracePeriodSeconds must be greater than shutdownGraceSeconds" }}
{{- end }}
{{- end }}
