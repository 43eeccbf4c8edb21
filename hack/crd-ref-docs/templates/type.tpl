{{- /* prose joins a doc comment's wrapped lines into paragraphs, safe inside a table cell. */ -}}
{{- define "prose" -}}
{{- . | trim | replace "|" "\\|" | replace "<" "&lt;" | replace ">" "&gt;" | replace "\n\n" "<br /><br />" | replace "\n" " " -}}
{{- end -}}

{{- define "type" -}}
{{- $type := . -}}
{{- if markdownShouldRenderType $type }}
### {{ $type.Name }}

{{ template "prose" $type.Doc }}
{{- if $type.IsAlias }}

Type: {{ markdownRenderTypeLink $type.UnderlyingType }}.
{{- end }}
{{- with $type.Validation }}

Validation: {{ range $i, $v := . }}{{ if $i }}; {{ end }}{{ $v }}{{ end }}.
{{- end }}
{{- with index $type.Markers "kubebuilder:validation:XValidation" }}

Rules:
{{- range . }}
- {{ template "prose" .Message }}.
{{- end }}
{{- end }}
{{- with $type.SortedReferences }}

Used in: {{ range $i, $r := . }}{{ if $i }}, {{ end }}{{ markdownRenderTypeLink $r }}{{ end }}.
{{- end }}
{{- if $type.Members }}

| Field | Type | Description |
| --- | --- | --- |
{{- if $type.GVK }}
| `apiVersion` | string | `{{ $type.GVK.Group }}/{{ $type.GVK.Version }}` |
| `kind` | string | `{{ $type.GVK.Kind }}` |
{{- end }}
{{- range $type.Members }}
| `{{ .Name }}` | {{ markdownRenderType .Type }} | {{ template "field" . }} |
{{- end }}
{{- end }}
{{- if $type.EnumValues }}

| Value | Meaning |
| --- | --- |
{{- range $type.EnumValues }}
| `{{ .Name }}` | {{ template "prose" .Doc }} |
{{- end }}
{{- end }}
{{ end }}
{{- end -}}

{{- /* field is a field's description: its doc comment, then whether it is required, its default,
its OpenAPI constraints and its CEL rules (the rules of a field's type are listed with that type). */ -}}
{{- define "field" -}}
{{- $field := . -}}
{{- $parts := list -}}
{{- if eq $field.Type.Name "ObjectMeta" -}}
{{- $parts = append $parts "Standard object metadata." -}}
{{- else if $field.Doc -}}
{{- $parts = append $parts ($field.Doc | trim | replace "|" "\\|" | replace "<" "&lt;" | replace ">" "&gt;" | replace "\n\n" "<br /><br />" | replace "\n" " ") -}}
{{- end -}}
{{- $constraints := list -}}
{{- range $field.Validation -}}
{{- if eq . "Required: {}" -}}{{- $parts = append $parts "**Required.**" -}}
{{- else if not (or (eq . "Optional: {}") (hasPrefix "items:XValidation" .)) -}}{{- $constraints = append $constraints . -}}
{{- end -}}
{{- end -}}
{{- with $field.Default }}{{ $parts = append $parts (printf "Default: `%s`." .) }}{{ end -}}
{{- with $constraints }}{{ $parts = append $parts (printf "Validation: %s." (join "; " . | replace "|" "\\|" | replace "<" "&lt;")) }}{{ end -}}
{{- $typeRules := list -}}
{{- range index $field.Type.Markers "kubebuilder:validation:XValidation" }}{{ $typeRules = append $typeRules .Message }}{{ end -}}
{{- range index $field.Markers "kubebuilder:validation:XValidation" -}}
{{- if not (has .Message $typeRules) }}{{ $parts = append $parts (printf "Rule: %s." (.Message | replace "|" "\\|" | replace "<" "&lt;")) }}{{ end -}}
{{- end -}}
{{- range index $field.Markers "kubebuilder:validation:items:XValidation" }}{{ $parts = append $parts (printf "Rule, each item: %s." (.Message | replace "|" "\\|" | replace "<" "&lt;")) }}{{ end -}}
{{- join "<br />" $parts -}}
{{- end -}}
