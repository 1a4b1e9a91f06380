{{/* Common labels for every object the chart renders. */}}
{{- define "meshwork.labels" -}}
app.kubernetes.io/part-of: meshwork
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Labels that identify one service's pods; Istio reads app/version for telemetry. */}}
{{- define "meshwork.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{/* Object name of a service's resources. */}}
{{- define "meshwork.fullname" -}}
meshwork-{{ .name }}
{{- end }}

{{/* The image reference for one service: <registry>/<service>:<tag>, or the service's own override. */}}
{{- define "meshwork.image" -}}
{{- $img := .root.Values.image -}}
{{- $tag := .svc.imageTag | default $img.tag | default .root.Chart.AppVersion -}}
{{- if $img.registry -}}{{ $img.registry }}/{{ end }}{{ $img.repositoryPrefix }}{{ .name }}:{{ $tag }}
{{- end }}

{{/* Services switched on in values, sorted by name so the output is stable. */}}
{{- define "meshwork.enabledServices" -}}
{{- $out := list -}}
{{- range $name := keys .Values.services | sortAlpha -}}
{{- if (index $.Values.services $name).enabled -}}{{- $out = append $out $name -}}{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end }}

{{/* The access table generated from the services' code: {services: {<svc>: {methods, callers}}}. */}}
{{- define "meshwork.access" -}}
{{- $table := .Files.Get "files/access.json" | fromJson -}}
{{- if not $table.services -}}{{- fail "charts/meshwork/files/access.json is missing or has no services" -}}{{- end -}}
{{- toJson $table.services -}}
{{- end }}

{{/* The services registered for identity's client-credentials grant: those identity's access table lets call IssueServiceToken. JSON list. */}}
{{- define "meshwork.serviceClients" -}}
{{- $access := include "meshwork.access" . | fromJson -}}
{{- $clients := list -}}
{{- range $caller, $paths := (index $access "identity").callers | default dict -}}
{{- if has "/meshwork.identity.v1.IdentityService/IssueServiceToken" $paths }}{{ $clients = append $clients $caller }}{{ end -}}
{{- end -}}
{{- toJson (sortAlpha $clients) -}}
{{- end }}

{{/* SPIFFE-style principal Istio gives a service account: <trust domain>/ns/<ns>/sa/<sa>. */}}
{{- define "meshwork.principal" -}}
{{ .root.Values.mesh.trustDomain }}/ns/{{ .root.Release.Namespace }}/sa/{{ .sa }}
{{- end }}

{{/* The service account of the gateway Istio deploys for the Gateway resource: <gateway>-<class>. */}}
{{- define "meshwork.gatewayServiceAccount" -}}
{{- $gw := .Values.mesh.gateway -}}
{{- $gw.serviceAccount | default (printf "%s-%s" $gw.name $gw.className) -}}
{{- end }}

{{/* The Service Istio deploys for the Gateway resource (its Deployment has the same name). */}}
{{- define "meshwork.gatewayService" -}}
{{- $gw := .Values.mesh.gateway -}}
{{- printf "%s-%s" $gw.name $gw.className -}}
{{- end }}

{{/* The services the load generator calls (loadgen/src/journeys.ts, clientsFor). */}}
{{- define "meshwork.loadgenTargets" -}}
{{- toJson (list "identity" "orders" "presence") -}}
{{- end }}

{{/*
How the load generator reaches the services: "url" (loadgen.baseUrl), "gateway" (with the mesh on:
it enters at the edge like any client, since its pod is no workload the services' policies admit),
or "direct" (each service's own Service, mesh off).
*/}}
{{- define "meshwork.loadgenRoute" -}}
{{- if .Values.loadgen.baseUrl -}}url
{{- else if and .Values.mesh.enabled .Values.mesh.gateway.enabled -}}gateway
{{- else if .Values.mesh.enabled -}}{{ fail "loadgen.baseUrl is required with the mesh on and its gateway off: the services admit only the gateway's and each other's workloads" }}
{{- else -}}direct
{{- end -}}
{{- end }}

{{/*
Whether the console's server proxies the RPC paths to the services itself (no gateway in front
of it); then the services admit it as they admit the gateway.
*/}}
{{- define "meshwork.consoleProxies" -}}
{{- if and .Values.console.enabled (not (and .Values.mesh.enabled .Values.mesh.gateway.enabled)) -}}true{{- end -}}
{{- end }}

{{/* host:port of a URL (nats://h:4222, http://h:4318) -> the port. */}}
{{- define "meshwork.urlPort" -}}
{{- $host := (urlParse .).host -}}
{{- last (splitList ":" $host) -}}
{{- end }}

{{/* Metadata labels of one service's objects: the common labels plus its name. */}}
{{- define "meshwork.serviceLabels" -}}
{{ include "meshwork.labels" .root }}
app.kubernetes.io/name: {{ .name }}
{{- end }}

{{/*
Where the chart's Deployments may run (values nodeSelector and tolerations), e.g. a dedicated
node pool. Call with the root context.
*/}}
{{- define "meshwork.placement" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
