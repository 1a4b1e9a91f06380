import { create, type DescMessage, type DescService, type MessageShape } from "@bufbuild/protobuf";
import { createValidator, violationsToProto, type Validator } from "@bufbuild/protovalidate";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/** Violations named in an answer; the rest are counted. Each names a field and a rule, never a value. */
const NAMED_VIOLATIONS = 5;

/**
 * Enforces the buf.validate rules written in the .proto files on every request message, for
 * every service, before the handler runs. An invalid request answers INVALID_ARGUMENT naming the
 * fields and rules it broke ("user_id: must be a valid UUID [string.uuid]"), with the violations
 * attached as a buf.validate.Violations detail for clients that read them. The rules travel with
 * the contract, so Go, Python and browser clients can check the same rules before they send.
 *
 * A rule that cannot be evaluated is the service's bug, not the caller's: it answers INTERNAL,
 * and `assertRulesCompile` makes a service with such a rule fail at start instead.
 */
export function validationInterceptor(validator: Validator = createValidator()): Interceptor {
  return (next) => async (req) => {
    if (!req.stream) {
      check(validator, req.method.input, req.message);
      return next(req);
    }
    return next({ ...req, message: checkEach(validator, req.method.input, req.message) });
  };
}

/** Compiles every request type's rules once, at start: a rule that does not compile stops the service. */
export function assertRulesCompile(services: DescService[], validator: Validator = createValidator()): void {
  for (const service of services) {
    for (const method of service.methods) {
      const result = validator.validate(method.input, create(method.input));
      if (result.kind === "error") throw new Error(`validation rules of ${method.input.typeName} do not compile: ${result.error.message}`);
    }
  }
}

function check<Desc extends DescMessage>(validator: Validator, schema: Desc, message: MessageShape<Desc>): void {
  const result = validator.validate(schema, message);
  if (result.kind === "valid") return;
  if (result.kind === "error") throw new ConnectError("internal error", Code.Internal, undefined, undefined, result.error);
  const named = result.violations.slice(0, NAMED_VIOLATIONS).map((violation) => violation.toString());
  const more = result.violations.length - named.length;
  const [detail, desc] = violationsToProto(result.violations);
  throw new ConnectError(`invalid request: ${named.join("; ")}${more > 0 ? `; and ${more} more` : ""}`, Code.InvalidArgument, undefined, [{ desc, value: detail }]);
}

async function* checkEach<Desc extends DescMessage>(validator: Validator, schema: Desc, messages: AsyncIterable<MessageShape<Desc>>): AsyncIterable<MessageShape<Desc>> {
  for await (const message of messages) {
    check(validator, schema, message);
    yield message;
  }
}
