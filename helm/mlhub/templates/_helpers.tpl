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

{{/* The auth values as the MLHUB_* variables the hub reads (mlhub/core/identity_settings.py),
     JSON: a list of {env: an EnvVar, field: the value it came from}. Empty values are left out,
     as is auth.type native (the hub's default); secrets only as secretKeyRef.
     docs/decisions/helm-auth-values.md */}}
{{- define "mlhub.authEnv" -}}
{{- $a := .Values.auth -}}
{{- $fullname := include "mlhub.fullname" . -}}
{{- $out := list -}}
{{- $plain := list
    (list "MLHUB_AUTHENTICATOR" "auth.type" (ternary "" $a.type (eq $a.type "native")))
    (list "MLHUB_ADMIN_USERS" "auth.adminUsers" (join "," $a.adminUsers))
    (list "MLHUB_AUTH_ALLOW_ALL" "auth.allowAll" (ternary "true" "" $a.allowAll))
    (list "MLHUB_OAUTH_CLIENT_ID" "auth.oauth.clientId" $a.oauth.clientId)
    (list "MLHUB_OAUTH_CALLBACK_URL" "auth.oauth.callbackUrl" $a.oauth.callbackUrl)
    (list "MLHUB_OAUTH_ALLOWED_GROUPS" "auth.oauth.allowedGroups" (join "," $a.oauth.allowedGroups))
    (list "MLHUB_OAUTH_ADMIN_GROUPS" "auth.oauth.adminGroups" (join "," $a.oauth.adminGroups))
    (list "MLHUB_GITHUB_URL" "auth.github.url" $a.github.url)
    (list "MLHUB_GITLAB_URL" "auth.gitlab.url" $a.gitlab.url)
    (list "MLHUB_OIDC_ISSUER" "auth.oidc.issuer" $a.oidc.issuer)
    (list "MLHUB_OIDC_AUTHORIZE_URL" "auth.oidc.authorizeUrl" $a.oidc.authorizeUrl)
    (list "MLHUB_OIDC_TOKEN_URL" "auth.oidc.tokenUrl" $a.oidc.tokenUrl)
    (list "MLHUB_OIDC_USERDATA_URL" "auth.oidc.userdataUrl" $a.oidc.userdataUrl)
    (list "MLHUB_OIDC_SCOPES" "auth.oidc.scopes" (join " " $a.oidc.scopes))
    (list "MLHUB_OIDC_USERNAME_CLAIM" "auth.oidc.usernameClaim" $a.oidc.usernameClaim)
    (list "MLHUB_OIDC_GROUPS_CLAIM" "auth.oidc.groupsClaim" $a.oidc.groupsClaim)
    (list "MLHUB_LDAP_SERVER" "auth.ldap.server" $a.ldap.server)
    (list "MLHUB_LDAP_PORT" "auth.ldap.port" (ternary (toString $a.ldap.port) "" (not (empty $a.ldap.port))))
    (list "MLHUB_LDAP_TLS" "auth.ldap.tls" $a.ldap.tls)
    (list "MLHUB_LDAP_CA_FILE" "auth.ldap.caCert" (ternary "/etc/mlhub/ldap-ca/ca.crt" "" (or (not (empty $a.ldap.caCert.secretName)) (not (empty $a.ldap.caCert.configMapName)))))
    (list "MLHUB_LDAP_BIND_DN_TEMPLATE" "auth.ldap.bindDnTemplates" (join ";" $a.ldap.bindDnTemplates))
    (list "MLHUB_LDAP_USER_SEARCH_BASE" "auth.ldap.userSearchBase" $a.ldap.userSearchBase)
    (list "MLHUB_LDAP_USER_ATTRIBUTE" "auth.ldap.userAttribute" $a.ldap.userAttribute)
    (list "MLHUB_LDAP_SEARCH_USER" "auth.ldap.searchUser" $a.ldap.searchUser)
    (list "MLHUB_LDAP_ALLOWED_GROUPS" "auth.ldap.allowedGroups" (join ";" $a.ldap.allowedGroups))
    (list "MLHUB_LDAP_ADMIN_GROUPS" "auth.ldap.adminGroups" (join ";" $a.ldap.adminGroups)) -}}
{{- range $plain }}
{{- if index . 2 }}
{{- $out = append $out (dict "env" (dict "name" (index . 0) "value" (index . 2)) "field" (index . 1)) -}}
{{- end }}
{{- end }}
{{- /* secrets: from auth.existingSecret (the keys the chosen authenticator uses), else the
       inline value, kept in the release's Secret (templates/secret.yaml) */ -}}
{{- $secrets := list
    (list "MLHUB_OAUTH_CLIENT_SECRET" "auth.oauth.clientSecret" "oauth-client-secret" $a.oauth.clientSecret (has $a.type (list "github" "gitlab" "oidc")))
    (list "MLHUB_LDAP_SEARCH_PASSWORD" "auth.ldap.searchPassword" "ldap-search-password" $a.ldap.searchPassword (and (eq $a.type "ldap") (not (empty $a.ldap.searchUser)))) -}}
{{- range $secrets }}
{{- $field := index . 1 -}}
{{- $ref := dict -}}
{{- if $a.existingSecret }}
{{- if index . 3 }}
{{- fail (printf "%s: leave it empty with auth.existingSecret (%s's key %s holds it)" $field $a.existingSecret (index . 2)) }}
{{- end }}
{{- if index . 4 }}
{{- $ref = dict "name" $a.existingSecret "key" (index . 2) -}}
{{- end }}
{{- else if index . 3 }}
{{- $ref = dict "name" $fullname "key" (index . 2) -}}
{{- end }}
{{- if $ref }}
{{- $out = append $out (dict "env" (dict "name" (index . 0) "valueFrom" (dict "secretKeyRef" $ref)) "field" (ternary "auth.existingSecret" $field (not (empty $a.existingSecret)))) -}}
{{- end }}
{{- end }}
{{- if and $a.ldap.caCert.secretName $a.ldap.caCert.configMapName }}
{{- fail "auth.ldap.caCert: set secretName or configMapName, not both" }}
{{- end }}
{{- toJson $out -}}
{{- end -}}
