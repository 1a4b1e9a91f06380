import assert from "node:assert/strict";
import { create, createFileRegistry, setExtension, type DescMessage } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, MessageOptionsSchema, file_google_protobuf_descriptor } from "@bufbuild/protobuf/wkt";
import { createValidator, type Validator } from "@bufbuild/protovalidate";
import { file_buf_validate_validate, message as messageRules, MessageRulesSchema } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { Code, ConnectError, type UnaryRequest } from "@connectrpc/connect";
import { AuditService } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import { PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { validationInterceptor } from "../../src/rpc/validation.ts";

/** The buf.validate rules of every request message, checked before the handler (rpc/validation.ts). */
describe("the validation interceptor", () => {
  /** A validator that counts its calls. */
  const counting = () => {
    const inner = createValidator({ failFast: true });
    const calls = { count: 0 };
    const validator: Validator = { validate: (schema, message) => (calls.count++, inner.validate(schema, message)) };
    return { validator, calls };
  };
  const run = async (validator: Validator, input: DescMessage, message: unknown) => {
    const request = { stream: false, message, method: { input }, service: {}, header: new Headers() } as unknown as UnaryRequest;
    let reached = false;
    await validationInterceptor(validator)(async () => ((reached = true), {}) as never)(request);
    return reached;
  };

  it("skips a request type with nothing to check (no fields, no message rules), as validating it can only pass", async () => {
    const { validator, calls } = counting();
    const input = PresenceService.method.getOnlineCount.input;
    assert.equal(input.fields.length, 0);
    assert.equal(await run(validator, input, create(input)), true);
    assert.equal(calls.count, 0);
  });

  it("checks a request type with fields, and refuses an invalid one with INVALID_ARGUMENT", async () => {
    const { validator, calls } = counting();
    const input = AuditService.method.getEvent.input;
    await assert.rejects(run(validator, input, create(input, { id: "" })), (error: ConnectError) => error.code === Code.InvalidArgument);
    assert.equal(calls.count, 1);
  });

  it("checks a request type without fields whose message-level rule may refuse it", async () => {
    // An empty message with a CEL rule on the message itself, which always fails.
    const options = create(MessageOptionsSchema);
    setExtension(options, messageRules, create(MessageRulesSchema, { cel: [{ id: "never", message: "never valid", expression: "false" }] }));
    const file = create(FileDescriptorProtoSchema, {
      name: "test/empty.proto",
      package: "test",
      syntax: "proto3",
      dependency: ["buf/validate/validate.proto"],
      messageType: [{ name: "Empty", options }],
    });
    const registry = createFileRegistry(file, (name) =>
      name === file_buf_validate_validate.proto.name ? file_buf_validate_validate : name === file_google_protobuf_descriptor.proto.name ? file_google_protobuf_descriptor : undefined,
    );
    const input = registry.getMessage("test.Empty")!;
    const { validator, calls } = counting();
    await assert.rejects(run(validator, input, create(input)), (error: ConnectError) => error.code === Code.InvalidArgument && /never valid/.test(error.rawMessage));
    assert.equal(calls.count, 1);
  });

  it("validates the very first call of a fresh interceptor, which loads the validation stack on that call", async () => {
    // A new interceptor without a validator, as the server pipeline makes it: its validator is
    // made on this call, after the stack's import, and the call waits for both.
    const input = AuditService.method.getEvent.input;
    const request = { stream: false, message: create(input, { id: "not-a-uuid" }), method: { input }, service: {}, header: new Headers() } as unknown as UnaryRequest;
    let reached = false;
    await assert.rejects(
      validationInterceptor()(async () => ((reached = true), {}) as never)(request),
      (error: ConnectError) => error.code === Code.InvalidArgument && /^id: .*\[string\.uuid\]/.test(error.rawMessage.replace(/^invalid request: /, "")),
    );
    assert.equal(reached, false);
    // and a valid first call of another fresh interceptor reaches the handler
    const valid = { ...request, message: create(input, { id: "01890a5d-ac96-774b-bcce-b302099a8057" }) } as UnaryRequest;
    assert.equal(await validationInterceptor()(async () => ((reached = true), {}) as never)(valid).then(() => reached), true);
  });
});
