/**
 * The NestJS peer of presence's GetOnlineCount: a Nest 12 microservice on the gRPC transport
 * (@grpc/grpc-js and @grpc/proto-loader reading presence's own .proto), a Guard that verifies the
 * bearer token with jose and a verified-token cache, and a better-sqlite3 count of live users.
 * Usage: node bench/peers/nestjs/dist/main.js <port> <count>
 *   with IDENTITY_JWKS_URL, TOKEN_ISSUER, TOKEN_AUDIENCE and DATABASE_PATH in the environment.
 */
import "reflect-metadata";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Module } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { type MicroserviceOptions, Transport } from "@nestjs/microservices";
import { AuthGuard } from "./auth.guard.js";
import { PresenceController, PresenceStore } from "./presence.controller.js";
import { TokenVerifier } from "./token-verifier.js";

@Module({ controllers: [PresenceController], providers: [PresenceStore, TokenVerifier, AuthGuard] })
class PresenceModule {}

const [port, count] = process.argv.slice(2);
if (!port || count === undefined) throw new Error("usage: main.js <port> <count>");
const protoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../proto");
const app = await NestFactory.createMicroservice<MicroserviceOptions>(PresenceModule, {
  transport: Transport.GRPC,
  options: {
    package: "meshwork.presence.v1",
    protoPath: path.join(protoRoot, "meshwork/presence/v1/presence.proto"),
    url: `127.0.0.1:${port}`,
    loader: { includeDirs: [protoRoot] },
  },
  logger: ["error", "warn"],
});
app.get(PresenceStore).seed(Number(count));
app.enableShutdownHooks();
await app.listen();
process.stdout.write("ready\n");
