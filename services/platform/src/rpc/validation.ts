import { create, hasOption, type DescMessage, type DescService, type MessageShape } from "@bufbuild/protobuf";
import type { Validator } from "@bufbuild/protovalidate";
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
 *
 * The validation stack itself (`@bufbuild/protovalidate` with its CEL interpreter and RE2 engine,
 * 591 KiB of presence's readable bundle) is loaded on the first call too, not at start: see `loadValidationStack`.
 * That first call waits for it and is validated like every other; `validator` is for tests.
 */
export function validationInterceptor(validator?: Validator): Interceptor {
  let loaded: { validator: Validator; stack: ValidationStack } | undefined;
  const load = async () => {
    const stack = await loadValidationStack();
    return (loaded ??= { validator: validator ?? stack.createValidator({ failFast: true }), stack });
  };
  return (next) => async (req) => {
    const { validator, stack } = loaded ?? (await load());
    if (hasNoRules(req.method.input, stack)) return next(req);
    if (!req.stream) {
      check(validator, stack, req.method.input, req.message);
      return next(req);
    }
    return next({ ...req, message: checkEach(validator, stack, req.method.input, req.message) });
  };
}

/** What this module uses of the validation stack, once it is loaded. */
interface ValidationStack {
  createValidator: typeof import("@bufbuild/protovalidate").createValidator;
  violationsToProto: typeof import("@bufbuild/protovalidate").violationsToProto;
  messageRules: typeof import("@bufbuild/protovalidate/gen/buf/validate/validate_pb.js").message;
}

let validationStack: Promise<ValidationStack> | undefined;

/**
 * The validation stack, imported on first use (then shared). Statically imported, its modules
 * were initialised at every start (its CEL standard library, RE2's tables, the generated
 * validate_pb descriptors), though no rule runs before the first request. In a service's bundle
 * esbuild keeps the code in the same file behind a lazy initialiser: this defers that work and
 * what it allocates, not V8's parsing of the text (docs/performance.md, fifth round).
 */
export function loadValidationStack(): Promise<ValidationStack> {
  return (validationStack ??= Promise.all([import("@bufbuild/protovalidate"), import("@bufbuild/protovalidate/gen/buf/validate/validate_pb.js")]).then(
    ([protovalidate, generated]) => ({
      createValidator: protovalidate.createValidator,
      violationsToProto: protovalidate.violationsToProto,
      messageRules: generated.message,
    }),
  ));
}

/**
 * True for a message type with nothing a rule could apply to: no fields, no oneofs and no
 * message-level buf.validate rules (an empty request, such as GetOnlineCount's). Validating it
 * can only answer "valid", after a reflection of the message and a walk of an empty plan on every
 * call. Any field, however unconstrained, keeps the validator in charge.
 */
function hasNoRules(schema: DescMessage, stack: ValidationStack): boolean {
  let empty = emptyTypes.get(schema);
  if (empty === undefined) {
    empty = schema.fields.length === 0 && schema.oneofs.length === 0 && !hasOption(schema, stack.messageRules);
    emptyTypes.set(schema, empty);
  }
  return empty;
}

const emptyTypes = new WeakMap<DescMessage, boolean>();

/**
 * Compiles every request type's rules: for `--check-config` (the image build runs it) and the unit
 * tests; a rule that does not compile is an error naming its message.
 */
export async function assertRulesCompile(services: DescService[], validator?: Validator): Promise<void> {
  const rules = validator ?? (await loadValidationStack()).createValidator();
  for (const service of services) {
    for (const method of service.methods) {
      const result = rules.validate(method.input, create(method.input));
      if (result.kind === "error") throw new Error(`validation rules of ${method.input.typeName} do not compile: ${result.error.message}`);
    }
  }
}

function check<Desc extends DescMessage>(validator: Validator, stack: ValidationStack, schema: Desc, message: MessageShape<Desc>): void {
  const result = validator.validate(schema, message);
  if (result.kind === "valid") return;
  if (result.kind === "error") throw new ConnectError("internal error", Code.Internal, undefined, undefined, result.error);
  const [detail, desc] = stack.violationsToProto(result.violations);
  throw new ConnectError(`invalid request: ${result.violations.map((violation) => violation.toString()).join("; ")}`, Code.InvalidArgument, undefined, [{ desc, value: detail }]);
}

async function* checkEach<Desc extends DescMessage>(validator: Validator, stack: ValidationStack, schema: Desc, messages: AsyncIterable<MessageShape<Desc>>): AsyncIterable<MessageShape<Desc>> {
  for await (const message of messages) {
    check(validator, stack, schema, message);
    yield message;
  }
}
