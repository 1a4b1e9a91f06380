import assert from "node:assert/strict";
import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { decodeJwt } from "jose";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { NotificationEventSchema } from "@meshwork/proto/meshwork/notifications/v1/events_pb.js";
import { NotificationsService } from "@meshwork/proto/meshwork/notifications/v1/notifications_pb.js";
import { waitFor } from "../../scripts/lib/system.ts";
import { adminToken, TestSystem } from "../support/harness.ts";

describe("notifications", function () {
  this.timeout(60_000);
  const system = new TestSystem({ services: ["identity", "notifications"] });
  let admin = "";
  before(async () => {
    await system.start();
    admin = await adminToken(system);
  });
  after(() => system.stop());

  it("records a farewell when an account is closed, publishes NotificationSent once, and shows it to an admin only", async () => {
    const token = await system.signIn("farewell@example.com", "a-passphrase-before-leaving", "Ada");
    const userId = decodeJwt(token).sub!;
    const notifications = (as: string) => system.client(NotificationsService, "notifications", "connect", as);
    assert.deepEqual((await notifications(token).listNotifications({ userId })).notifications, []);

    await system.client(IdentityService, "identity", "connect", token).closeAccount({ userId });
    let sent: Awaited<ReturnType<ReturnType<typeof notifications>["listNotifications"]>>["notifications"] = [];
    await waitFor(async () => (sent = (await notifications(admin).listNotifications({ userId })).notifications).length > 0, "the farewell", 15_000);
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.kind, "farewell");
    assert.equal(sent[0]!.recipient, "farewell@example.com");
    assert.match(sent[0]!.body, /^Hello Ada,/);

    // Published once on its own stream, about this user and this notification.
    const jsm = await system.jsm();
    let published: { subject: string; userId: string; notificationId: string }[] = [];
    await waitFor(async () => {
      const { state } = await jsm.streams.info("NOTIFICATIONS");
      published = [];
      for (let seq = state.first_seq; state.messages > 0 && seq <= state.last_seq; seq++) {
        const message = await jsm.streams.getMessage("NOTIFICATIONS", { seq });
        if (!message) continue;
        const event = fromBinary(NotificationEventSchema, message.data).event;
        if (event.case === "notificationSent") published.push({ subject: message.subject, userId: event.value.userId, notificationId: event.value.notificationId });
      }
      return published.length > 0;
    }, "NotificationSent on the NOTIFICATIONS stream", 15_000);
    assert.deepEqual(published, [{ subject: "notifications.v1.notification.sent", userId, notificationId: sent[0]!.id }]);

    // Another member may not read them.
    const other = await system.signIn("nosy@example.com", "a-nosy-neighbour-passphrase");
    await assert.rejects(notifications(other).listNotifications({ userId }), (error: unknown) => ConnectError.from(error).code === Code.PermissionDenied);
  });
});
