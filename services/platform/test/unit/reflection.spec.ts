import assert from "node:assert/strict";
import { create, fromBinary, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { Health } from "@meshwork/proto/grpc/health/v1/health_pb.js";
import * as v1 from "@meshwork/proto/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "@meshwork/proto/grpc/reflection/v1alpha/reflection_pb.js";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { UserEventSchema } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import { registerReflection } from "../../src/rpc/reflection.ts";

type Request = v1.ServerReflectionRequest["messageRequest"];

/** One reflection stream: sends `requests` in order and returns the answers. */
async function reflect(requests: Request[], version: "v1" | "v1alpha" = "v1"): Promise<v1.ServerReflectionResponse["messageResponse"][]> {
  const transport = createRouterTransport((router) => registerReflection(router, [Health, IdentityService]));
  const answers: v1.ServerReflectionResponse["messageResponse"][] = [];
  if (version === "v1") {
    const client = createClient(v1.ServerReflection, transport);
    const stream = client.serverReflectionInfo(
      (async function* () {
        for (const messageRequest of requests) yield create(v1.ServerReflectionRequestSchema, { host: "test", messageRequest });
      })(),
    );
    for await (const answer of stream) answers.push(answer.messageResponse);
  } else {
    const client = createClient(v1alpha.ServerReflection, transport);
    const stream = client.serverReflectionInfo(
      (async function* () {
        // The same fields under the older package name.
        for (const messageRequest of requests) {
          yield create(v1alpha.ServerReflectionRequestSchema, { host: "test", messageRequest: messageRequest as v1alpha.ServerReflectionRequest["messageRequest"] });
        }
      })(),
    );
    for await (const answer of stream) answers.push(answer.messageResponse as v1.ServerReflectionResponse["messageResponse"]);
  }
  return answers;
}

function transitiveImports(file: DescFile): string[] {
  const names = new Set<string>();
  const visit = (current: DescFile) => {
    for (const dependency of current.dependencies) {
      names.add(dependency.name + ".proto");
      visit(dependency);
    }
  };
  visit(file);
  return [...names];
}

function fileNames(answer: v1.ServerReflectionResponse["messageResponse"] | undefined): string[] {
  assert.equal(answer?.case, "fileDescriptorResponse", JSON.stringify(answer));
  return answer.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name);
}

describe("server reflection", () => {
  it("lists the served services, health and both reflection versions", async () => {
    for (const version of ["v1", "v1alpha"] as const) {
      const [answer] = await reflect([{ case: "listServices", value: "" }], version);
      assert.equal(answer?.case, "listServicesResponse");
      assert.deepEqual(
        answer.value.service.map((service) => service.name),
        ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection", "meshwork.identity.v1.IdentityService"],
      );
    }
  });

  it("finds the file of a service, a method, a message, a nested type and a field, with its imports once per stream", async () => {
    const [service, method, message, nested, field] = await reflect([
      { case: "fileContainingSymbol", value: "meshwork.identity.v1.IdentityService" },
      { case: "fileContainingSymbol", value: "meshwork.identity.v1.IdentityService.SignIn" },
      { case: "fileContainingSymbol", value: "meshwork.identity.v1.SignInResponse" },
      { case: "fileContainingSymbol", value: "meshwork.identity.v1.UserEvent.SignedIn" },
      { case: "fileContainingSymbol", value: "meshwork.identity.v1.SignInRequest.email" },
    ]);
    // The requested file first, then what it imports that this stream has not had yet.
    const [first, ...imports] = fileNames(service);
    assert.equal(first, "meshwork/identity/v1/identity.proto");
    assert.deepEqual(imports.sort(), transitiveImports(IdentityService.file).sort());
    assert.ok(imports.includes("google/protobuf/timestamp.proto"));
    assert.deepEqual(fileNames(method), ["meshwork/identity/v1/identity.proto"]);
    assert.deepEqual(fileNames(message), ["meshwork/identity/v1/identity.proto"]);
    assert.deepEqual(fileNames(field), ["meshwork/identity/v1/identity.proto"]);
    // The event messages live in events.proto, which no served service imports: not found here.
    assert.equal(UserEventSchema.file.name, "meshwork/identity/v1/events");
    assert.equal(nested!.case, "errorResponse");
  });

  it("serves a file by name with the descriptor the generated code embeds", async () => {
    const [answer] = await reflect([{ case: "fileByFilename", value: "meshwork/identity/v1/identity.proto" }]);
    assert.equal(answer?.case, "fileDescriptorResponse");
    const file = fromBinary(FileDescriptorProtoSchema, answer.value.fileDescriptorProto[0]!);
    assert.equal(file.package, "meshwork.identity.v1");
    assert.deepEqual(
      file.service[0]!.method.map((m) => m.name),
      IdentityService.methods.map((m) => m.name),
    );
    const getJwks = file.service[0]!.method.find((m) => m.name === "GetJwks")!;
    assert.equal(getJwks.options?.idempotencyLevel, 1, "GetJwks keeps its NO_SIDE_EFFECTS option");
  });

  it("answers what it does not know with NOT_FOUND and keeps the stream open", async () => {
    const answers = await reflect([
      { case: "fileContainingSymbol", value: "meshwork.nothing.v1.Nothing" },
      { case: "fileByFilename", value: "nothing.proto" },
      { case: "fileContainingExtension", value: create(v1.ExtensionRequestSchema, { containingType: "meshwork.identity.v1.User", extensionNumber: 100 }) },
      { case: "allExtensionNumbersOfType", value: "meshwork.identity.v1.Nothing" },
      { case: "allExtensionNumbersOfType", value: "meshwork.identity.v1.User" },
      { case: "listServices", value: "" },
    ]);
    for (const answer of answers.slice(0, 4)) {
      assert.equal(answer!.case, "errorResponse");
      assert.equal(answer.value.errorCode, 5);
    }
    assert.deepEqual(answers[4], { case: "allExtensionNumbersResponse", value: create(v1.ExtensionNumberResponseSchema, { baseTypeName: "meshwork.identity.v1.User", extensionNumber: [] }) });
    assert.equal(answers[5]!.case, "listServicesResponse");
  });
});
