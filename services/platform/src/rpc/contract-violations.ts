import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { createValidator, type Validator } from "@bufbuild/protovalidate";

/**
 * Every contract violation of a message, as "field: rule" lines (empty when it is valid): for
 * services' tests of their own rules, and for any Node client that checks before it sends.
 *
 * It imports the validation stack statically (a synchronous check for tests and clients), so it
 * lives apart from the request path of validation.ts, which loads the stack on a request's first
 * call: a service's bundle does not call this, and esbuild leaves it out.
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
