import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { InvalidArgumentError, listDeadLetters, NotFoundError, replayDeadLetter, type DeadLetter, type ServiceContext } from "@meshwork/platform";
import {
  DeadLetterSchema,
  DeadLetterService,
  ListDeadLettersResponseSchema,
  ReplayDeadLetterResponseSchema,
} from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import type { AuditConfig } from "./config.ts";
import type { AuditTables } from "./store.ts";

/**
 * The DEADLETTER stream over RPC, for the console and anyone without NATS access: the same list
 * and replay as `meshwork deadletters`. audit hosts it because it already reads every stream.
 */
export function deadLetterRoutes(context: ServiceContext<AuditTables, AuditConfig>) {
  const connection = context.nats.connection;
  return (router: ConnectRouter) =>
    router.service(DeadLetterService, {
      async listDeadLetters(req) {
        const letters = await listDeadLetters(connection, req.consumer || undefined);
        return create(ListDeadLettersResponseSchema, { deadLetters: letters.map(toMessage) });
      },
      async replayDeadLetter(req) {
        if (req.sequence === 0n) throw new InvalidArgumentError("missing required field: sequence");
        const sequence = Number(req.sequence);
        const known = (await listDeadLetters(connection)).some((letter) => letter.sequence === sequence);
        if (!known) throw new NotFoundError(`no dead letter at sequence ${sequence}`);
        return create(ReplayDeadLetterResponseSchema, { deadLetter: toMessage(await replayDeadLetter(connection, sequence)) });
      },
    });
}

function toMessage(letter: DeadLetter) {
  const at = Date.parse(letter.deadLetteredAt);
  return create(DeadLetterSchema, {
    sequence: BigInt(letter.sequence),
    eventId: letter.eventId,
    type: letter.type,
    consumer: letter.consumer,
    stream: letter.stream,
    originalSubject: letter.originalSubject,
    error: letter.error,
    deliveries: letter.deliveries,
    deadLetteredAt: Number.isNaN(at) ? undefined : timestampFromMs(at),
  });
}
