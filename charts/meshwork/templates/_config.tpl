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
{{- if eq .name "identity" }}
ACCESS_TOKEN_TTL_SECONDS: {{ $v.identity.accessTokenTtlSeconds | quote }}
MESHWORK_ADMIN_EMAIL: {{ $v.identity.admin.email | quote }}
# Keys come from the mounted Secret; a pod must never invent its own (replicas would disagree).
SIGNING_KEYS_AUTOCREATE: "false"
SIGNING_KEYS_FILE: {{ printf "/var/run/secrets/meshwork/signing-keys/%s" $v.identity.signingKeys.fileName | quote }}
# The registered service clients: the mounted Secret, one file per client.
SERVICE_CLIENTS_DIR: /var/run/secrets/meshwork/service-clients
{{- end }}
{{- range $key, $value := .svc.env }}
{{ $key }}: {{ $value | quote }}
{{- end }}
{{- end }}

{{/* The bootstrap admin password: identity creates the admin with it. */}}
{{- define "meshwork.identity.env" -}}
- name: MESHWORK_ADMIN_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.identity.admin.existingSecret | default "meshwork-identity-admin" }}
      key: MESHWORK_ADMIN_PASSWORD
{{- end }}

{{/* A service client's own secret for identity's client-credentials grant (its key in the shared Secret). */}}
{{- define "meshwork.serviceClient.env" -}}
- name: SERVICE_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.identity.serviceClients.existingSecret | default "meshwork-service-clients" }}
      key: {{ .name }}
{{- end }}
