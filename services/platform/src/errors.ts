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

export class ResourceExhaustedError extends DomainError {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super(Code.ResourceExhausted, message, { "retry-after": String(retryAfterSeconds) });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** Maps anything thrown by a handler to what the caller may see. Unknown errors become Internal. */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof DomainError) {
    const connectError = new ConnectError(error.message, error.code);
    for (const [key, value] of Object.entries(error.details)) connectError.metadata.set(key, value);
    return connectError;
  }
  return new ConnectError("internal error", Code.Internal);
}
