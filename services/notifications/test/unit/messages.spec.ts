import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { contractViolations } from "@meshwork/platform";
import { ListNotificationsRequestSchema } from "@meshwork/proto/meshwork/notifications/v1/notifications_pb.js";
import { farewell } from "../../src/domain/messages.ts";

describe("the farewell message", () => {
  it("greets the user by name, says what was erased, and is signed by the sender", () => {
    const message = farewell("  Ada ", "The Meshwork team");
    assert.equal(message.kind, "farewell");
    assert.match(message.body, /^Hello Ada,\n/);
    assert.match(message.body, /sessions are ended/);
    assert.match(message.body, /cancelled and refunded/);
    assert.match(message.body, /personal data is erased/);
    assert.match(message.body, /The Meshwork team$/);
  });

  it("still greets a user without a display name", () => {
    assert.match(farewell("", "us").body, /^Hello,\n/);
  });
});

describe("the ListNotifications contract (notifications.proto rules)", () => {
  it("needs a user id that is a UUID", () => {
    const request = (userId: string) => create(ListNotificationsRequestSchema, { userId });
    assert.deepEqual(contractViolations(ListNotificationsRequestSchema, request("01890a5d-ac96-774b-bcce-b302099a8057")), []);
    assert.match(contractViolations(ListNotificationsRequestSchema, request("not-a-uuid")).join(), /^user_id: .*\[string\.uuid\]/);
    assert.match(contractViolations(ListNotificationsRequestSchema, request("")).join(), /^user_id: .*\[string\.uuid/);
  });
});
