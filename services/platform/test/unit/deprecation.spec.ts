import assert from "node:assert/strict";
import { Code, ConnectError, createContextValues, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { DEPRECATED_APIS } from "@meshwork/proto/deprecations.ts";
import { PresenceService as PresenceV1 } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { PresenceService as PresenceV2 } from "@meshwork/proto/meshwork/presence/v2/presence_pb.js";
import { principalKey } from "../../src/auth/authorize.ts";
import { deprecationInterceptor, deprecationsInForce, overdueApis, resolveDeprecation } from "../../src/rpc/deprecation.ts";

const table = [{ api: PresenceV1.typeName, successor: PresenceV2.typeName, deprecatedOn: "2026-11-26" }];
const day = (iso: string) => new Date(`${iso}T00:00:00Z`).getTime();

/** Calls the interceptor as the server would, at the instant `now`, as a signed-in member. */
async function callAt(now: number, service: typeof PresenceV1 | typeof PresenceV2, extensions = ""): Promise<Headers> {
  const interceptor = deprecationInterceptor(deprecationsInForce(table, extensions), () => now);
  const contextValues = createContextValues();
  contextValues.set(principalKey, { userId: "u1", roles: ["member"], sessionId: "s1", expiresAt: new Date(now + 60_000) });
  const request = { service, method: service.methods[0]!, header: new Headers(), contextValues } as unknown as UnaryRequest;
  const response = await interceptor(async () => ({ header: new Headers(), trailer: new Headers() }) as unknown as UnaryResponse)(request);
  return response.header;
}

describe("the deprecation window", () => {
  it("defaults to 90 days after the API was deprecated", () => {
    assert.equal(resolveDeprecation(table[0]!).sunset.toISOString(), "2027-02-24T00:00:00.000Z");
    assert.equal(resolveDeprecation({ ...table[0]!, sunset: "2027-06-30" }).sunset.toISOString(), "2027-06-30T00:00:00.000Z");
  });

  it("serves presence v1 before its sunset with Deprecation, Sunset and Link headers", async () => {
    const headers = await callAt(day("2027-02-23") + 86_399_000, PresenceV1);
    assert.equal(headers.get("deprecation"), `@${day("2026-11-26") / 1000}`);
    assert.equal(headers.get("sunset"), "Wed, 24 Feb 2027 00:00:00 GMT");
    assert.equal(headers.get("link"), '</meshwork.presence.v2.PresenceService>; rel="successor-version"');
  });

  it("refuses presence v1 after its sunset and names v2", async () => {
    await assert.rejects(callAt(day("2027-02-24"), PresenceV1), (error: ConnectError) => {
      assert.equal(error.code, Code.FailedPrecondition);
      assert.match(error.rawMessage, /meshwork\.presence\.v1\.PresenceService was retired on 2027-02-24; use meshwork\.presence\.v2\.PresenceService/);
      assert.equal(error.metadata.get("sunset"), "Wed, 24 Feb 2027 00:00:00 GMT");
      return true;
    });
  });

  it("leaves v2, which is not in the table, untouched at any time", async () => {
    const headers = await callAt(day("2030-01-01"), PresenceV2);
    assert.equal(headers.get("sunset"), null);
  });

  it("serves presence v1 past its sunset while an incident extension holds, then refuses it", async () => {
    const extension = `${PresenceV1.typeName}=2027-03-31`;
    assert.equal((await callAt(day("2027-03-15"), PresenceV1, extension)).get("sunset"), "Wed, 31 Mar 2027 00:00:00 GMT");
    await assert.rejects(callAt(day("2027-03-31"), PresenceV1, extension), (error: ConnectError) => error.code === Code.FailedPrecondition);
  });

  it("refuses an extension that is earlier than the sunset, names an unknown API or is malformed", () => {
    assert.throws(() => deprecationsInForce(table, `${PresenceV1.typeName}=2027-01-01`), /must be later/);
    assert.throws(() => deprecationsInForce(table, "meshwork.nothing.v1.Nope=2027-09-01"), /not in the deprecation table/);
    assert.throws(() => deprecationsInForce(table, `${PresenceV1.typeName}=soon`), /YYYY-MM-DD/);
  });

  it("keeps every row of the real table well-formed", () => {
    for (const row of DEPRECATED_APIS) assert.ok(resolveDeprecation(row).sunset > resolveDeprecation(row).deprecatedOn);
  });
});

describe("api-check", () => {
  const built = new Set([PresenceV1.typeName, PresenceV2.typeName]);

  it("passes until 14 days after the sunset and fails from the 15th while presence v1 is still built", () => {
    assert.deepEqual(overdueApis(table, built, new Date(day("2027-03-10"))), []);
    const overdue = overdueApis(table, built, new Date(day("2027-03-11")));
    assert.deepEqual(overdue.map((api) => [api.api, api.daysPastSunset, api.successor]), [[PresenceV1.typeName, 15, PresenceV2.typeName]]);
  });

  it("passes once presence v1 is deleted from the build", () => {
    assert.deepEqual(overdueApis(table, new Set([PresenceV2.typeName]), new Date(day("2028-01-01"))), []);
  });
});
