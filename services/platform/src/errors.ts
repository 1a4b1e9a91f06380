import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Domain errors are typed; rpc handlers throw them and the platform maps them to Connect codes
 * in one place, so callers never see stack traces or SQL.
 */
export class DomainError extends Error {
  readonly code: Code;
  readonly details: Record<string, string>;
  constructor(code: Code, message: string, details: Record<string, string> = {}) {
    super(message);
    this.code = code;
    this.details = details;
  }
}

export class InvalidArgumentError extends DomainError {
  constructor(message: string) {
    super(Code.InvalidArgument, message);
  }
}

export class NotFoundError extends DomainError {
  constructor(message: string) {
    super(Code.NotFound, message);
  }
}

export class AlreadyExistsError extends DomainError {
  constructor(message: string) {
    super(Code.AlreadyExists, message);
  }
}

export class UnauthenticatedError extends DomainError {
  constructor(message = "unauthenticated") {
    super(Code.Unauthenticated, message);
  }
}

export class PermissionDeniedError extends DomainError {
  constructor(message = "permission denied") {
    super(Code.PermissionDenied, message);
  }
}

/** The request is well formed, but the state it acts on does not allow it (a closed account, say). */
export class FailedPreconditionError extends DomainError {
  constructor(message: string) {
    super(Code.FailedPrecondition, message);
  }
}

export class ResourceExhaustedError extends DomainError {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super(Code.ResourceExhausted, message, { "retry-after": String(retryAfterSeconds) });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * Maps anything thrown by a handler to what the caller may see. Unknown errors become Internal.
 * The innermost interceptor calls it once (rpc/interceptors.ts), so every other interceptor sees
 * the mapped error.
 */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof DomainError) {
    const connectError = new ConnectError(error.message, error.code);
    for (const [key, value] of Object.entries(error.details)) connectError.metadata.set(key, value);
    return connectError;
  }
  return new ConnectError("internal error", Code.Internal);
}

/**
 * What the caller hears when its request cannot be read as the method's message: a fixed text,
 * because the parser's own words ("illegal tag: field no 460 wire type 6", a decoder's UTF-8
 * complaint) tell an attacker which library and which byte tripped it, and nothing a legitimate
 * client needs.
 */
export const MALFORMED_REQUEST = "malformed request";

export function malformedRequest(): ConnectError {
  return new ConnectError(MALFORMED_REQUEST, Code.InvalidArgument);
}

/**
 * Whether an error raised while Connect read the request (before any interceptor saw a message)
 * is a decoding failure: Connect's binary parser answers Internal, its JSON parser and the strict
 * UTF-8 decoder answer InvalidArgument with the parser's text, anything else Unknown. Codes that
 * Connect chose deliberately for the caller stay: ResourceExhausted (over readMaxBytes),
 * Unimplemented (an unknown compression), DeadlineExceeded, Canceled, and the gate's
 * Unauthenticated and PermissionDenied.
 */
export function isDecodingFailure(error: ConnectError): boolean {
  if (isUnexpectedCompression(error)) return false;
  return error.code === Code.Internal || error.code === Code.Unknown || error.code === Code.InvalidArgument;
}

/**
 * A message flagged compressed when no encoding was negotiated is a framing violation, not an
 * unreadable message: the gRPC and Connect specifications answer it with INTERNAL, and the
 * conformance suite (make test-conformance) checks that. Connect marks it only by its text.
 */
function isUnexpectedCompression(error: ConnectError): boolean {
  return error.code === Code.Internal && error.rawMessage.startsWith("received compressed envelope");
}

/**
 * Turns a decoding failure into the fixed INVALID_ARGUMENT answer, in place. In place because
 * Connect raises it inside its protocol handler and serializes that same object right after it
 * aborts the call's signal (see rpc/gate.ts): the abort is the only moment the platform holds it.
 */
export function rewriteAsMalformedRequest(error: ConnectError): void {
  const fixed = malformedRequest();
  Object.assign(error, { code: fixed.code, rawMessage: fixed.rawMessage, message: fixed.message, details: [], cause: undefined });
}
