import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import type { Transaction } from "kysely";
import { UserEvent_SignedInSchema, UserEvent_SignedOutSchema, UserEventSchema } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import type { PlatformTables } from "../../src/db/database.ts";
import { defineVariantConsumer, type ReceivedEvent } from "../../src/events/consumer/spec.ts";

describe("a consumer of one event variant", () => {
  const handled: string[] = [];
  const consumer = defineVariantConsumer({
    name: "test-sign-ins",
    stream: "IDENTITY",
    subject: "identity.v1.user.signed_in",
    schema: UserEventSchema,
    variant: "signedIn",
    handle: async (signedIn, _trx: Transaction<PlatformTables>) => void handled.push(signedIn.sessionId),
  });
  const deliver = (event: ReturnType<typeof create<typeof UserEventSchema>>) => {
    const data = toBinary(UserEventSchema, event);
    const received = { message: consumer.decode(data), data } as ReceivedEvent<unknown>;
    return consumer.handle(received, {} as Transaction<PlatformTables>);
  };

  it("asks JetStream for the variant's subject only, with the platform's retry defaults", () => {
    assert.deepEqual(consumer.filterSubjects, ["identity.v1.user.signed_in"]);
    assert.equal(consumer.maxDeliver, 5);
    assert.deepEqual(consumer.backoffMs, [200, 1_000, 5_000]);
  });

  it("hands the handler the variant's value, and ignores any other variant on the subject", async () => {
    handled.length = 0;
    await deliver(create(UserEventSchema, { event: { case: "signedIn", value: create(UserEvent_SignedInSchema, { sessionId: "s1" }) } }));
    await deliver(create(UserEventSchema, { event: { case: "signedOut", value: create(UserEvent_SignedOutSchema, { sessionId: "s2" }) } }));
    assert.deepEqual(handled, ["s1"]);
  });
});
