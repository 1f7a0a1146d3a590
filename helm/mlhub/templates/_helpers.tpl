{{/* Names and labels shared by every template. */}}

{{- define "mlhub.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The URL people open: publicUrl; else the Ingress host (https with TLS anywhere); else
     localhost:8080, where NOTES.txt's port-forward puts it. */}}
{{- define "mlhub.publicUrl" -}}
{{- $scheme := or .Values.ingress.tls.enabled .Values.ssl.enabled | ternary "https" "http" -}}
{{- if .Values.publicUrl -}}
{{- .Values.publicUrl | trimSuffix "/" -}}
{{- else if .Values.ingress.enabled -}}
{{- printf "%s://%s" $scheme .Values.ingress.host -}}
{{- else -}}
{{- printf "%s://localhost:8080" $scheme -}}
{{- end -}}
{{- end -}}

{{- define "mlhub.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Pod labels: the spawner's per-user NetworkPolicies admit pods with mlhub.origin + mlhub.role. */}}
{{- define "mlhub.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mlhub.podLabels" -}}
{{ include "mlhub.selector" . }}
mlhub.origin: {{ .root.Values.hubName }}
mlhub.role: {{ .component }}
{{- end -}}

{{- define "mlhub.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-hub" (include "mlhub.fullname" .)) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "mlhub.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{/* A secret value kept across upgrades: the given one, else the existing one, else new. */}}
{{- define "mlhub.secretValue" -}}
{{- if .given -}}
{{- .given | b64enc -}}
{{- else if (index .existing .key) -}}
{{- index .existing .key -}}
{{- else -}}
{{- .generate | b64enc -}}
{{- end -}}
{{- end -}}

{{- define "mlhub.securityContext" -}}
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
{{- with .Values.hub.securityContext }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* hub.extraEnv as zero-to-jupyterhub takes it: a list of EnvVars as it is; a mapping of
     NAME: value (a string) or NAME: an EnvVar without its name (e.g. valueFrom). */}}
{{- define "mlhub.extraEnv" -}}
{{- if kindIs "slice" . -}}
{{- toYaml . -}}
{{- else -}}
{{- range $name, $value := . }}
{{- if kindIs "map" $value }}
- {{ merge (dict "name" $name) $value | toJson }}
{{- else }}
- {name: {{ $name | quote }}, value: {{ $value | quote }}}
{{- end }}
{{- end }}
{{- end -}}
{{- end -}}
