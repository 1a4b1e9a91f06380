{{/* Environment one service reads from its ConfigMap (non-secret settings only). */}}
{{- define "meshwork.serviceConfig" -}}
{{- $v := .root.Values -}}
RPC_PORT: {{ .svc.rpcPort | quote }}
ADMIN_PORT: {{ .svc.adminPort | quote }}
DATA_DIR: /tmp/data
NATS_URL: {{ $v.nats.url | quote }}
LOG_LEVEL: {{ $v.logLevel | quote }}
MESHWORK_LOG_FORMAT: json
MESHWORK_ENVIRONMENT: {{ $v.environment | quote }}
IDENTITY_JWKS_URL: {{ printf "http://identity.%s.svc.cluster.local:%v/.well-known/jwks.json" .root.Release.Namespace $v.services.identity.adminPort | quote }}
TOKEN_ISSUER: {{ $v.mesh.jwt.issuer | quote }}
TOKEN_AUDIENCE: {{ first $v.mesh.jwt.audiences | quote }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ $v.telemetry.otlpEndpoint | quote }}
OTEL_SERVICE_NAME: {{ .name | quote }}
SHUTDOWN_GRACE_MS: {{ $v.shutdownGraceMs | quote }}
CORS_ALLOWED_ORIGINS: {{ join "," $v.cors.allowedOrigins | quote }}
{{- /* Behind the gateway every connection comes from the sidecar; the gateway's X-Forwarded-For entry names the client. */}}
TRUSTED_PROXY_HOPS: {{ ternary "1" "0" (and $v.mesh.enabled $v.mesh.gateway.enabled) | quote }}
{{- /* The service's own settings from values; rendered with tpl, so they may follow other values. */}}
{{- range $key, $value := .svc.env }}
{{ $key }}: {{ tpl (toString $value) $.root | quote }}
{{- end }}
{{- end }}
