{{/* SPDX-License-Identifier: Apache-2.0 */}}

{{- define "potluck.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "potluck.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "potluck.labels" -}}
{{ include "potluck.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "potluck.image" -}}
{{- $tag := .Values.image.tag | default (printf "%s-%s" .Chart.AppVersion .Values.image.variant) -}}
{{ printf "%s:%s" .Values.image.repository $tag }}
{{- end -}}

{{- define "potluck.secretName" -}}
{{- if .Values.secrets.create -}}
{{ include "potluck.fullname" . }}
{{- else -}}
{{ required "secrets.existingSecret: name the Secret that holds secret-key, database-url and redis-url (or set secrets.create)" .Values.secrets.existingSecret }}
{{- end -}}
{{- end -}}

{{- define "potluck.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.name | default (include "potluck.fullname" .) }}
{{- else -}}
{{ .Values.serviceAccount.name | default "default" }}
{{- end -}}
{{- end -}}

{{- define "potluck.claimName" -}}
{{ .Values.storage.persistence.existingClaim | default (printf "%s-shared" (include "potluck.fullname" .)) }}
{{- end -}}

{{/* Host names the web answers to: localhost (the probes), the service, the ingress. */}}
{{- define "potluck.allowedHosts" -}}
{{- $hosts := list "localhost" "127.0.0.1" (include "potluck.fullname" .) -}}
{{- if .Values.ingress.enabled -}}
{{- $hosts = concat $hosts .Values.ingress.hosts -}}
{{- end -}}
{{- $hosts = concat $hosts .Values.allowedHosts -}}
{{ join "," (uniq $hosts) }}
{{- end -}}

{{- define "potluck.csrfTrustedOrigins" -}}
{{- $origins := list -}}
{{- if .Values.ingress.enabled -}}
{{- $tlsHosts := list -}}
{{- range .Values.ingress.tls -}}
{{- $tlsHosts = concat $tlsHosts .hosts -}}
{{- end -}}
{{- range .Values.ingress.hosts -}}
{{- $origins = append $origins (printf "%s://%s" (ternary "https" "http" (has . $tlsHosts)) .) -}}
{{- end -}}
{{- end -}}
{{ join "," $origins }}
{{- end -}}

{{/* The environment of every Potluck process: settings, and secrets as NAME_FILE paths. */}}
{{- define "potluck.env" -}}
- name: POTLUCK_DATA_DIR
  value: /var/lib/potluck
- name: SECRET_KEY_FILE
  value: /run/secrets/potluck/secret-key
- name: DATABASE_URL_FILE
  value: /run/secrets/potluck/database-url
- name: REDIS_URL_FILE
  value: /run/secrets/potluck/redis-url
{{- if .Values.metrics.token }}
- name: POTLUCK_METRICS_TOKEN_FILE
  value: /run/secrets/potluck/metrics-token
{{- end }}
- name: POTLUCK_ALLOWED_HOSTS
  value: {{ include "potluck.allowedHosts" . | quote }}
{{- with include "potluck.csrfTrustedOrigins" . }}
- name: POTLUCK_CSRF_TRUSTED_ORIGINS
  value: {{ . | quote }}
{{- end }}
- name: POTLUCK_MODEL_ROOTS
  value: /var/lib/potluck/models
{{- if eq .Values.storage.files.backend "s3" }}
- name: POTLUCK_FILE_STORAGE
  value: potluck.files.storage_s3.S3Storage
- name: POTLUCK_S3_BUCKET
  value: {{ required "storage.s3.bucket is required with storage.files.backend=s3" .Values.storage.s3.bucket | quote }}
{{- range $name, $value := dict "POTLUCK_S3_PREFIX" .Values.storage.s3.prefix "POTLUCK_S3_ENDPOINT_URL" .Values.storage.s3.endpointUrl "POTLUCK_S3_REGION" .Values.storage.s3.region "POTLUCK_S3_ADDRESSING_STYLE" .Values.storage.s3.addressingStyle }}
{{- if $value }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}
{{- if .Values.storage.s3.credentialsFromSecret }}
- name: AWS_SHARED_CREDENTIALS_FILE
  value: /run/secrets/potluck/aws-credentials
{{- end }}
{{- else if eq .Values.storage.files.backend "local" }}
- name: POTLUCK_FILE_STORAGE_ROOT
  value: /var/lib/potluck/files
{{- else }}
{{- fail (printf "storage.files.backend must be local or s3, not %q" .Values.storage.files.backend) }}
{{- end }}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* Volumes of every Potluck pod: secrets, the per-pod data dir, /tmp, the shared volume. */}}
{{- define "potluck.volumes" -}}
- name: secrets
  secret:
    secretName: {{ include "potluck.secretName" . }}
    defaultMode: 0440
- name: data
  emptyDir: {}
- name: tmp
  emptyDir: {}
- name: shared
  persistentVolumeClaim:
    claimName: {{ include "potluck.claimName" . }}
{{- end -}}

{{/*
The data dir is the pod's own (spool, logs, caches); what every pod must see alike is
mounted into it from the shared volume, at the same paths everywhere (adapters are loaded
by the path where they were trained).
*/}}
{{- define "potluck.volumeMounts" -}}
- name: secrets
  mountPath: /run/secrets/potluck
  readOnly: true
- name: data
  mountPath: /var/lib/potluck
- name: tmp
  mountPath: /tmp
- name: shared
  mountPath: /var/lib/potluck/models
  subPath: models
- name: shared
  mountPath: /var/lib/potluck/finetune
  subPath: finetune
{{- if eq .Values.storage.files.backend "local" }}
- name: shared
  mountPath: /var/lib/potluck/files
  subPath: files
{{- end }}
{{- end -}}

{{- define "potluck.podSpecCommon" -}}
serviceAccountName: {{ include "potluck.serviceAccountName" . }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}
