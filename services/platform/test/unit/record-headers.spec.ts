import assert from "node:assert/strict";
import type http from "node:http";
import { RecordHeaders } from "../../src/rpc/record-headers.ts";

/**
 * RecordHeaders stands in for undici's Headers on the direct unary path: every operation must give
 * what the real Headers gives for the same input, including the errors it throws.
 */
describe("RecordHeaders answers as the Fetch API's Headers does", () => {
  /** The same script against both; every observable answer compared. */
  const compare = (start: () => [Headers, Headers], script: (headers: Headers) => unknown) => {
    const [record, real] = start();
    const outcome = (headers: Headers) => {
      try {
        return { value: script(headers), entries: [...headers], cookies: headers.getSetCookie() };
      } catch (error) {
        return { error: (error as Error).constructor.name };
      }
    };
    assert.deepEqual(outcome(record), outcome(real));
  };
  const fromInit = (init: Record<string, string>) => () => [new RecordHeaders(init), new Headers(init)] as [Headers, Headers];

  const node: http.IncomingHttpHeaders = {
    ":method": "POST",
    ":path": "/a.B/C",
    "content-type": "application/grpc",
    authorization: "Bearer t0k3n",
    "x-list": ["one", "two"],
    "x-padded": "  spaced\t",
    "set-cookie": ["a=1", "b=2"],
  };
  const fromNode = () => {
    const real = new Headers();
    for (const [key, value] of Object.entries(node)) {
      if (key.startsWith(":") || value === undefined) continue;
      for (const item of Array.isArray(value) ? value : [value]) real.append(key, item);
    }
    return [RecordHeaders.fromNode(node), real] as [Headers, Headers];
  };

  const scripts: [string, (headers: Headers) => unknown][] = [
    ["get of a present name", (h) => h.get("content-type")],
    ["get in another case", (h) => h.get("Authorization")],
    ["get of an absent name", (h) => h.get("grpc-timeout")],
    ["get of a list", (h) => h.get("x-list")],
    ["get trims", (h) => h.get("x-padded")],
    ["get of set-cookie", (h) => h.get("set-cookie")],
    ["get of a pseudo-header throws", (h) => h.get(":path")],
    ["get of an invalid name throws", (h) => h.get("bad name")],
    ["has", (h) => [h.has("content-type"), h.has("CONTENT-TYPE"), h.has("nope")]],
    ["set replaces and sorts", (h) => (h.set("Zeta", " z "), h.set("content-type", "application/proto"), h.get("zeta"))],
    ["append joins", (h) => (h.append("x-list", "three"), h.append("x-new", "1"), h.append("X-New", "2"), h.get("x-new"))],
    ["append of set-cookie keeps each", (h) => (h.append("Set-Cookie", "c=3"), h.getSetCookie())],
    ["set of set-cookie replaces them", (h) => (h.set("set-cookie", "d=4"), h.get("set-cookie"))],
    ["delete", (h) => (h.delete("Authorization"), h.delete("set-cookie"), h.has("authorization"))],
    ["a value with a newline throws", (h) => h.set("x-bad", "a\nb")],
    ["a value with NUL throws", (h) => h.append("x-bad", "a\0b")],
    ["an invalid name on set throws", (h) => h.set("x bad", "v")],
    ["forEach", (h) => {
      const seen: string[] = [];
      h.forEach((value, key, parent) => seen.push(`${key}=${value}:${parent === h}`));
      return seen;
    }],
    ["keys and values", (h) => [[...h.keys()], [...h.values()]]],
  ];

  for (const [title, script] of scripts) {
    it(`from Node's record: ${title}`, () => compare(fromNode, script));
    it(`from a record: ${title}`, () => compare(fromInit({ "content-type": "application/grpc", "grpc-status": "0", Authorization: "x" }), script));
  }

  it("copies into a real Headers as a Headers would", () => {
    const [record, real] = fromNode();
    assert.deepEqual([...new Headers(record)], [...new Headers(real)]);
  });

  it("gives Node's outgoing header object", () => {
    const headers = new RecordHeaders({ "content-type": "application/grpc" });
    headers.append("set-cookie", "a=1");
    headers.append("set-cookie", "b=2");
    headers.set("Deprecation", "@1700000000");
    assert.deepEqual(headers.toNode(), { "content-type": "application/grpc", deprecation: "@1700000000", "set-cookie": ["a=1", "b=2"] });
  });

  it("reads Node's record without copying it until something changes", () => {
    const record = { "content-type": "application/proto" } as http.IncomingHttpHeaders;
    const headers = RecordHeaders.fromNode(record);
    record["x-late"] = "seen";
    assert.equal(headers.get("x-late"), "seen");
    headers.set("x-own", "1");
    record["x-later"] = "not seen";
    assert.equal(headers.get("x-later"), null);
    assert.equal(record["x-own"], undefined, "Node's record is never written");
  });
});
