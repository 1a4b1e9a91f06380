import assert from "node:assert/strict";
import { Code, ConnectError, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { PresenceService as PresenceServiceV2 } from "@meshwork/proto/meshwork/presence/v2/presence_pb.js";
import { deprecationInterceptor } from "../../src/rpc/deprecation.ts";

describe("the deprecation interceptor", () => {
  const sunset = new Date("2027-06-30T00:00:00Z");
  const interceptor = deprecationInterceptor({ [PresenceService.typeName]: { sunset, successor: PresenceServiceV2.typeName } });
  const request = (service: typeof PresenceService | typeof PresenceServiceV2) =>
    ({ service, method: service.methods[0], header: new Headers() }) as unknown as UnaryRequest;
  const answer = async () => ({ header: new Headers(), trailer: new Headers() }) as unknown as UnaryResponse;
  const expected = {
    // 180 days before the sunset, as a Unix time (RFC 9745).
    deprecation: `@${Math.floor(sunset.getTime() / 1000) - 180 * 86_400}`,
    sunset: "Wed, 30 Jun 2027 00:00:00 GMT",
    link: `</${PresenceServiceV2.typeName}>; rel="successor-version"`,
  };

  it("marks every answer of a deprecated service with Deprecation, Sunset and the successor", async () => {
    const response = await interceptor(answer)(request(PresenceService));
    assert.deepEqual(
      { deprecation: response.header.get("deprecation"), sunset: response.header.get("sunset"), link: response.header.get("link") },
      expected,
    );
  });

  it("marks an error answer of a deprecated service too", async () => {
    const failing = async (): Promise<UnaryResponse> => {
      throw new ConnectError("no such thing", Code.NotFound);
    };
    const error = await interceptor(failing)(request(PresenceService)).then(
      () => assert.fail("the call should fail"),
      (caught: unknown) => caught as ConnectError,
    );
    assert.equal(error.code, Code.NotFound, "the error itself is unchanged");
    assert.deepEqual({ deprecation: error.metadata.get("deprecation"), sunset: error.metadata.get("sunset"), link: error.metadata.get("link") }, expected);
  });

  it("leaves the answers of a current service alone", async () => {
    const response = await interceptor(answer)(request(PresenceServiceV2));
    assert.equal(response.header.get("deprecation"), null);
    assert.equal(response.header.get("sunset"), null);
  });
});
