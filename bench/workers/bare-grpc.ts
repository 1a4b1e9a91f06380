/**
 * The RPC baseline: a bare @grpc/grpc-js server that answers GetOnlineCount on the same path
 * with a response of the same size (the same count, encoded by the same protobuf library), and
 * does nothing else: no auth, no interceptors, no database.
 * Usage: node bench/workers/bare-grpc.ts <port> <count>
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { GetOnlineCountResponseSchema } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import * as grpc from "@grpc/grpc-js";

const [port, count] = process.argv.slice(2);
if (!port || count === undefined) throw new Error("usage: bare-grpc.ts <port> <count>");
const answer = BigInt(count);
const server = new grpc.Server();
server.addService(
  {
    GetOnlineCount: {
      path: "/meshwork.presence.v1.PresenceService/GetOnlineCount",
      requestStream: false,
      responseStream: false,
      requestSerialize: (value: Buffer) => value,
      requestDeserialize: (bytes: Buffer) => bytes,
      responseSerialize: (value: Uint8Array) => Buffer.from(value),
      responseDeserialize: (bytes: Buffer) => bytes,
    },
  },
  {
    GetOnlineCount: (_call: grpc.ServerUnaryCall<Buffer, Uint8Array>, callback: grpc.sendUnaryData<Uint8Array>) => {
      callback(null, toBinary(GetOnlineCountResponseSchema, create(GetOnlineCountResponseSchema, { count: answer })));
    },
  },
);
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error) => {
  if (error) throw error;
  process.stdout.write("ready\n");
});
process.once("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
