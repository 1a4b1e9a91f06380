import { create, hasOption, type DescMessage, type DescService, type MessageShape } from "@bufbuild/protobuf";
import { createValidator, violationsToProto, type Validator } from "@bufbuild/protovalidate";
import { message as messageRules } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/**
 * Enforces the buf.validate rules written in the .proto files on every request message, for
 * every service, before the handler runs. An invalid request answers INVALID_ARGUMENT naming the
 * field and rule it broke ("user_id: must be a valid UUID [string.uuid]", never the value), with
 * the violation attached as a buf.validate.Violations detail for clients that read it. The rules
 * travel with the contract, so Go, Python and browser clients can check the same rules before
 * they send.
 *
 * The validator stops at the first violation: reporting every one costs work in proportion to the
 * message, and 300,000 empty order items (600 KB) took 12 s of CPU to report in full, against
 * 0.3 ms to refuse on the first.
 *
 * A rule that cannot be evaluated is the service's bug, not the caller's: it answers INTERNAL.
 * Such a rule is caught before it ships, by `assertRulesCompile` in the unit tests (every service
 * in proto/gen) and in each service's `--check-config` (the image build runs it), not at start:
 * compiling every rule there was the largest part of a service's start CPU (docs/performance.md);
 * each request type's rules compile on its first call.
 */
export function validationInterceptor(validator: Validator = createValidator({ failFast: true })): Interceptor {
  return (next) => async (req) => {
    if (hasNoRules(req.method.input)) return next(req);
    if (!req.stream) {
      check(validator, req.method.input, req.message);
      return next(req);
    }
    return next({ ...req, message: checkEach(validator, req.method.input, req.message) });
  };
}

/**
 * True for a message type with nothing a rule could apply to: no fields, no oneofs and no
 * message-level buf.validate rules (an empty request, such as GetOnlineCount's). Validating it
 * can only answer "valid", after a reflection of the message and a walk of an empty plan on every
 * call. Any field, however unconstrained, keeps the validator in charge.
 */
function hasNoRules(schema: DescMessage): boolean {
  let empty = emptyTypes.get(schema);
  if (empty === undefined) {
    empty = schema.fields.length === 0 && schema.oneofs.length === 0 && !hasOption(schema, messageRules);
    emptyTypes.set(schema, empty);
  }
  return empty;
}

const emptyTypes = new WeakMap<DescMessage, boolean>();

/** Compiles every request type's rules once, at start: a rule that does not compile stops the service. */
export function assertRulesCompile(services: DescService[], validator: Validator = createValidator()): void {
  for (const service of services) {
    for (const method of service.methods) {
      const result = validator.validate(method.input, create(method.input));
      if (result.kind === "error") throw new Error(`validation rules of ${method.input.typeName} do not compile: ${result.error.message}`);
    }
  }
}

/**
 * Every contract violation of a message, as "field: rule" lines (empty when it is valid): for
 * services' tests of their own rules, and for any Node client that checks before it sends.
 */
export function contractViolations<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>, validator: Validator = sharedValidator()): string[] {
  const result = validator.validate(schema, message);
  if (result.kind === "error") throw result.error;
  return result.kind === "invalid" ? result.violations.map((violation) => violation.toString()) : [];
}

let validatorForChecks: Validator | undefined;
function sharedValidator(): Validator {
  return (validatorForChecks ??= createValidator());
}

function check<Desc extends DescMessage>(validator: Validator, schema: Desc, message: MessageShape<Desc>): void {
  const result = validator.validate(schema, message);
  if (result.kind === "valid") return;
  if (result.kind === "error") throw new ConnectError("internal error", Code.Internal, undefined, undefined, result.error);
  const [detail, desc] = violationsToProto(result.violations);
  throw new ConnectError(`invalid request: ${result.violations.map((violation) => violation.toString()).join("; ")}`, Code.InvalidArgument, undefined, [{ desc, value: detail }]);
}

async function* checkEach<Desc extends DescMessage>(validator: Validator, schema: Desc, messages: AsyncIterable<MessageShape<Desc>>): AsyncIterable<MessageShape<Desc>> {
  for await (const message of messages) {
    check(validator, schema, message);
    yield message;
  }
}
