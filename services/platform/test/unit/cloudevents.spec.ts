import assert from "node:assert/strict";
import { fromHeaders, MalformedEventError, toHeaders, traceIdOf } from "../../src/events/cloudevents.ts";
import { uuidv7 } from "../../src/ids.ts";

describe("CloudEvents headers", () => {
  it("round-trips every attribute through NATS headers", () => {
    const envelope = {
      id: uuidv7(),
      type: "meshwork.identity.v1.UserEvent",
      source: "meshwork/identity",
      subject: "identity.v1.user.signed_in",
      time: new Date("2026-11-26T12:00:00.000Z"),
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    };
    const headers = toHeaders(envelope);
    assert.equal(headers.get("ce-specversion"), "1.0");
    assert.equal(headers.get("datacontenttype"), "application/protobuf");
    assert.deepEqual(fromHeaders(headers, envelope.subject), { ...envelope, tracestate: undefined });
  });

  it("calls a message without the required attributes malformed", () => {
    const headers = toHeaders({ id: "x", type: "t", source: "s", subject: "a.b", time: new Date() });
    headers.delete("ce-type");
    assert.throws(() => fromHeaders(headers, "a.b"), MalformedEventError);
    assert.throws(() => fromHeaders(undefined, "a.b"), MalformedEventError);
  });

  it("reads names exactly as sent, takes tracestate, and refuses another spec version or an empty id", () => {
    const envelope = { id: "e1", type: "t", source: "s", subject: "a.b", time: new Date(0), traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "k=v" };
    assert.equal(fromHeaders(toHeaders(envelope), "a.b").tracestate, "k=v");
    const versioned = toHeaders(envelope);
    versioned.set("ce-specversion", "0.3");
    assert.throws(() => fromHeaders(versioned, "a.b"), MalformedEventError);
    const emptyId = toHeaders(envelope);
    emptyId.set("ce-id", "");
    assert.throws(() => fromHeaders(emptyId, "a.b"), MalformedEventError);
    // CloudEvents' NATS binding names the attributes in lower case; another case is another header.
    const shouting = toHeaders(envelope);
    shouting.delete("ce-id");
    shouting.set("CE-ID", "e1");
    assert.throws(() => fromHeaders(shouting, "a.b"), MalformedEventError);
  });

  it("reads the trace id out of a traceparent", () => {
    assert.equal(traceIdOf("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), "0af7651916cd43dd8448eb211c80319c");
    assert.equal(traceIdOf(undefined), "");
  });
});

describe("uuidv7", () => {
  it("is a version-7 RFC 9562 UUID whose order follows time", () => {
    const earlier = uuidv7(1_700_000_000_000);
    const later = uuidv7(1_700_000_000_001);
    assert.match(earlier, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(earlier < later);
    assert.notEqual(uuidv7(), uuidv7());
  });
});
