export { baseConfigSchema, loadConfig, databaseUrlFor, manifestPorts, ConfigError, type BaseConfig } from "./config.ts";
export { createLogger, type Logger } from "./logger.ts";
export {
  DomainError,
  InvalidArgumentError,
  NotFoundError,
  AlreadyExistsError,
  UnauthenticatedError,
  PermissionDeniedError,
  FailedPreconditionError,
  ResourceExhaustedError,
  toConnectError,
  MALFORMED_REQUEST,
} from "./errors.ts";
export { uuidv7 } from "./ids.ts";
export { Bounded } from "./bounded.ts";
export { openDatabase, type Database, type Migrations, type PlatformTables } from "./db/database.ts";
export { preparedQuery, type PreparedQuery } from "./db/prepared.ts";
export { enqueueEvent, type OutgoingEvent } from "./events/outbox.ts";
export { eventEmitter, type EventEmitter, type EventEnvelopeMessage } from "./events/emitter.ts";
export { defineConsumer, defineVariantConsumer, ConsumerRunner, type ConsumerSpec, type RawEvent, type ReceivedEvent } from "./events/consumer.ts";
export { fromHeaders, toHeaders, traceIdOf, type EventEnvelope } from "./events/cloudevents.ts";
export { DEADLETTER_STREAM, deadLetterSubject, ensureStreams, type StreamSpec } from "./events/topology.ts";
export { byService, defineAccess, rulesFor, rolesIn, servicesIn, PUBLIC, SERVICE_ROLE, SIGNED_IN, ROLES, type AccessTable, type Grant, type MethodAccess, type Role, type ServiceGrant } from "./auth/access.ts";
export { principalKey, requirePrincipal } from "./auth/authorize.ts";
export { createTokenVerifier, localKeys, remoteKeys, InvalidTokenError, type Principal } from "./auth/verifier.ts";
export { clientAddressKey } from "./rpc/client-address.ts";
export { runService, type ServiceContext, type ServiceDefinition, type ServiceParts, type RunningService } from "./service.ts";
export { periodicWorker, type Worker } from "./workers.ts";
export { type AdminRoute } from "./admin.ts";
export { serviceMeter } from "./metrics.ts";
export { listDeadLetters, replayDeadLetter, type DeadLetter } from "./events/dead-letters.ts";
export { clientTelemetryInterceptor, createServiceClient, retryRefusedStreams } from "./rpc/client.ts";
export { deprecationsInForce, overdueApis, RETIREMENT_GRACE_DAYS, type Deprecation, type OverdueApi } from "./rpc/deprecation.ts";
export { CORS_ALLOWED_HEADERS, CORS_ALLOWED_METHODS, CORS_EXPOSED_HEADERS, CORS_MAX_AGE_SECONDS } from "./rpc/cors.ts";
export { contractViolations } from "./rpc/contract-violations.ts";
