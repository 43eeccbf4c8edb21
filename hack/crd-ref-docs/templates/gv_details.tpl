{{- define "gvDetails" -}}
{{- $gv := . -}}
## {{ $gv.GroupVersionString }}

{{ template "prose" $gv.Doc }}

Kinds:
{{- range $gv.SortedKinds }}
- {{ $gv.TypeForKind . | markdownRenderTypeLink }}
{{- end }}
{{- /* The kinds first, then the types they are made of, each group alphabetically. */}}
{{- range $gv.SortedTypes }}{{ if .GVK }}
{{ template "type" . }}{{ end }}{{ end }}
{{- range $gv.SortedTypes }}{{ if not .GVK }}
{{ template "type" . }}{{ end }}{{ end }}
{{- end -}}
