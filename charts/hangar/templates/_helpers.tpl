{{/* The prefix of every object's name: the release name, with "hangar" added unless it holds it. */}}
{{- define "hangar.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "hangar.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: call with (dict "ctx" $ "component" "manager"). */}}
{{- define "hangar.selectorLabels" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "hangar.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "hangar.managerServiceAccount" -}}
{{ include "hangar.fullname" . }}-controller-manager
{{- end -}}

{{- define "hangar.routerServiceAccount" -}}
{{ include "hangar.fullname" . }}-router
{{- end -}}

{{- define "hangar.flyTokenSecret" -}}
{{ .Values.fly.token.secretName | default (printf "%s-fly-token" (include "hangar.fullname" .)) }}
{{- end -}}

{{- define "hangar.rootKeySecret" -}}
{{ .Values.rootKey.secretName | default (printf "%s-root-key" (include "hangar.fullname" .)) }}
{{- end -}}

{{/* The restricted pod security profile both Deployments run under. */}}
{{- define "hangar.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "hangar.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* nodeSelector, tolerations and affinity of one component's values. */}}
{{- define "hangar.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
