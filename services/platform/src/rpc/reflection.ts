import { create, toBinary, type DescFile, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import * as v1 from "@meshwork/proto/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "@meshwork/proto/grpc/reflection/v1alpha/reflection_pb.js";

/** Every RPC path of the two reflection services: public, like health (see access.ts). */
export const REFLECTION_PATHS = [v1.ServerReflection, v1alpha.ServerReflection].flatMap((service) =>
  service.methods.map((method) => `/${service.typeName}/${method.name}`),
);

/** The services reflection itself adds to a port, so that they are listed too. */
export const REFLECTION_SERVICES: DescService[] = [v1.ServerReflection, v1alpha.ServerReflection];

// grpc status codes, as the protocol's ErrorResponse carries them.
const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

/**
 * The descriptors a port serves, indexed the way reflection clients ask for them: by file name,
 * by fully-qualified symbol (types, services, methods, fields, enum values) and by extension.
 * Built once from the descriptors the generated code embeds, so it cannot disagree with what
 * the router actually serves.
 */
export class DescriptorIndex {
  readonly serviceNames: string[];
  private readonly files = new Map<string, DescFile>();
  private readonly symbols = new Map<string, DescFile>();
  private readonly extensions = new Map<string, Map<number, DescFile>>();

  constructor(services: DescService[]) {
    this.serviceNames = [...new Set(services.map((service) => service.typeName))].sort();
    for (const service of services) this.addFile(service.file);
  }

  file(name: string): DescFile | undefined {
    return this.files.get(name);
  }

  fileContainingSymbol(symbol: string): DescFile | undefined {
    return this.symbols.get(symbol.replace(/^\./, ""));
  }

  fileContainingExtension(extendee: string, number: number): DescFile | undefined {
    return this.extensions.get(extendee.replace(/^\./, ""))?.get(number);
  }

  extensionNumbers(extendee: string): number[] | undefined {
    const numbers = this.extensions.get(extendee.replace(/^\./, ""));
    return numbers ? [...numbers.keys()].sort((a, b) => a - b) : undefined;
  }

  /** `file` and every file it imports, transitively, dependencies first. */
  withDependencies(file: DescFile): DescFile[] {
    const ordered: DescFile[] = [];
    const visit = (current: DescFile) => {
      if (ordered.includes(current)) return;
      for (const dependency of current.dependencies) visit(dependency);
      ordered.push(current);
    };
    visit(file);
    return ordered;
  }

  private addFile(file: DescFile): void {
    if (this.files.has(file.name + ".proto")) return;
    this.files.set(file.name + ".proto", file);
    for (const dependency of file.dependencies) this.addFile(dependency);
    for (const service of file.services) {
      this.symbols.set(service.typeName, file);
      for (const method of service.methods) this.symbols.set(`${service.typeName}.${method.name}`, file);
    }
    for (const enumeration of file.enums) this.addEnum(enumeration.typeName, enumeration.values, file);
    for (const message of file.messages) this.addMessage(message, file);
    for (const extension of file.extensions) this.addExtension(extension.typeName, extension.extendee.typeName, extension.number, file);
  }

  private addMessage(message: DescMessage, file: DescFile): void {
    this.symbols.set(message.typeName, file);
    for (const field of message.fields) this.symbols.set(`${message.typeName}.${field.name}`, file);
    for (const oneof of message.oneofs) this.symbols.set(`${message.typeName}.${oneof.name}`, file);
    for (const nested of message.nestedMessages) this.addMessage(nested, file);
    for (const enumeration of message.nestedEnums) this.addEnum(enumeration.typeName, enumeration.values, file);
    for (const extension of message.nestedExtensions) this.addExtension(extension.typeName, extension.extendee.typeName, extension.number, file);
  }

  private addEnum(typeName: string, values: readonly { name: string }[], file: DescFile): void {
    this.symbols.set(typeName, file);
    // Enum values are scoped to the enum's parent, as in protobuf's own symbol table.
    const scope = typeName.includes(".") ? typeName.slice(0, typeName.lastIndexOf(".")) : "";
    for (const value of values) this.symbols.set(scope ? `${scope}.${value.name}` : value.name, file);
  }

  private addExtension(typeName: string, extendee: string, number: number, file: DescFile): void {
    this.symbols.set(typeName, file);
    let numbers = this.extensions.get(extendee);
    if (!numbers) this.extensions.set(extendee, (numbers = new Map()));
    numbers.set(number, file);
  }
}

// v1 and v1alpha share every message shape, field for field; only the package differs. The
// answers are built once, as plain values, and each version's schema turns them into its type.
type Request = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;
type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/** One reflection stream: it remembers which files it already sent, as the protocol allows. */
export function reflectionSession(index: DescriptorIndex): (request: Request) => Answer {
  const sent = new Set<string>();
  const files = (file: DescFile | undefined, what: string): Answer => {
    if (!file) return { case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: `${what} not found` } };
    const fresh = index.withDependencies(file).filter((candidate) => candidate === file || !sent.has(candidate.name));
    for (const candidate of fresh) sent.add(candidate.name);
    // The requested file first: clients such as grpcurl read the first entry as the answer.
    fresh.sort((a, b) => (a === file ? -1 : b === file ? 1 : 0));
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: fresh.map(serialize) } };
  };
  return (request) => {
    const message = request.messageRequest;
    switch (message.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: index.serviceNames.map((name) => ({ name })) } };
      case "fileByFilename":
        return files(index.file(message.value), `file ${message.value}`);
      case "fileContainingSymbol":
        return files(index.fileContainingSymbol(message.value), `symbol ${message.value}`);
      case "fileContainingExtension":
        return files(
          index.fileContainingExtension(message.value.containingType, message.value.extensionNumber),
          `extension ${message.value.extensionNumber} of ${message.value.containingType}`,
        );
      case "allExtensionNumbersOfType": {
        const numbers = index.extensionNumbers(message.value);
        // A message nobody extends is known, just without extensions.
        if (numbers === undefined && !index.fileContainingSymbol(message.value)) {
          return { case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: `type ${message.value} not found` } };
        }
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: message.value, extensionNumber: numbers ?? [] } };
      }
      default:
        return { case: "errorResponse", value: { errorCode: INVALID_ARGUMENT, errorMessage: "empty reflection request" } };
    }
  };
}

function serialize(file: DescFile): Uint8Array {
  return toBinary(FileDescriptorProtoSchema, file.proto);
}

/**
 * gRPC server reflection, v1 and v1alpha, for `services` plus health and reflection themselves:
 * grpcurl, buf curl, Postman and grpcui then need no .proto files.
 *
 * No maintained package does this for a Connect router: @grpc/reflection serves grpc-js servers
 * from proto-loader definitions, and Connect's own reflection lives in Go (connectrpc.com/grpcreflect).
 * Protobuf-ES already embeds every file's FileDescriptorProto in the generated code, so serving
 * them takes only this index.
 */
export function registerReflection(router: ConnectRouter, services: DescService[]): void {
  const index = new DescriptorIndex([...services, ...REFLECTION_SERVICES]);
  router.service(v1.ServerReflection, {
    async *serverReflectionInfo(requests) {
      const answer = reflectionSession(index);
      for await (const request of requests) {
        yield create(v1.ServerReflectionResponseSchema, {
          validHost: request.host,
          originalRequest: request,
          messageResponse: answer(request) as v1.ServerReflectionResponse["messageResponse"],
        });
      }
    },
  });
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(requests) {
      const answer = reflectionSession(index);
      for await (const request of requests) {
        yield create(v1alpha.ServerReflectionResponseSchema, {
          validHost: request.host,
          originalRequest: request,
          messageResponse: answer(request) as v1alpha.ServerReflectionResponse["messageResponse"],
        });
      }
    },
  });
}
