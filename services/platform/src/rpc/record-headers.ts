import type http from "node:http";

/**
 * The Fetch API's `Headers`, as undici implements it (the same names refused, values trimmed and
 * refused, duplicates joined, iteration sorted, Set-Cookie kept apart), over a plain record.
 *
 * Why: every unary call on the direct path (direct-unary.ts) needs three of them (the request's,
 * the answer's headers and its trailers). undici's checks each name and value through WebIDL
 * converters and keeps a sorted copy; building and filling them was 5-6 % of presence's CPU per
 * call in a profile (docs/performance.md, fifth round). Request headers are read straight from the
 * record Node parsed (names already lowercase and checked by Node); a map is built only when a
 * caller changes or iterates them. test/unit/record-headers.spec.ts holds it to undici's answers.
 */
export class RecordHeaders implements Headers {
  /** The request's headers as Node parsed them; dropped once `map` exists. */
  private node: http.IncomingHttpHeaders | undefined;
  private map: Map<string, string> | undefined;
  private cookies: string[] | undefined;

  /** Headers of a request as Node parsed them (pseudo-headers such as `:path` left out). */
  static fromNode(headers: http.IncomingHttpHeaders): RecordHeaders {
    const result = new RecordHeaders();
    result.node = headers;
    return result;
  }

  constructor(init?: Record<string, string>) {
    if (init) {
      this.map = new Map();
      for (const name in init) this.set(name, init[name]!);
    }
  }

  get(name: string): string | null {
    if (this.node) {
      let value = this.node[name];
      if (value === undefined) {
        const lower = name.toLowerCase();
        if (lower !== name) value = this.node[lower];
      }
      if (value !== undefined && name.charCodeAt(0) !== COLON) return typeof value === "string" ? trimmed(value) : value.map(trimmed).join(", ");
      checkName(name);
      return null;
    }
    const key = checkName(name).toLowerCase();
    if (key === "set-cookie") return this.cookies?.length ? this.cookies.join(", ") : null;
    return this.own().get(key) ?? null;
  }

  has(name: string): boolean {
    return this.get(name) !== null;
  }

  set(name: string, value: string): void {
    const key = checkName(name).toLowerCase();
    const normalized = checkValue(name, value);
    const map = this.own();
    if (key === "set-cookie") this.cookies = [normalized];
    else map.set(key, normalized);
  }

  append(name: string, value: string): void {
    const key = checkName(name).toLowerCase();
    const normalized = checkValue(name, value);
    const map = this.own();
    if (key === "set-cookie") {
      (this.cookies ??= []).push(normalized);
      return;
    }
    const existing = map.get(key);
    map.set(key, existing === undefined ? normalized : `${existing}, ${normalized}`);
  }

  delete(name: string): void {
    const key = checkName(name).toLowerCase();
    const map = this.own();
    if (key === "set-cookie") this.cookies = undefined;
    else map.delete(key);
  }

  getSetCookie(): string[] {
    this.own();
    return this.cookies ? [...this.cookies] : [];
  }

  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    for (const [key, value] of this.entries()) callback.call(thisArg, value, key, this);
  }

  *entries(): HeadersIterator<[string, string]> {
    const map = this.own();
    const keys = [...map.keys()];
    if (this.cookies?.length) keys.push("set-cookie");
    keys.sort();
    for (const key of keys) {
      if (key === "set-cookie") for (const cookie of this.cookies!) yield [key, cookie];
      else yield [key, map.get(key)!];
    }
  }

  *keys(): HeadersIterator<string> {
    for (const [key] of this.entries()) yield key;
  }

  *values(): HeadersIterator<string> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): HeadersIterator<[string, string]> {
    return this.entries();
  }

  /** Node's outgoing header object with the same fields (Set-Cookie as a list). */
  toNode(): Record<string, string | string[]> {
    const result: Record<string, string | string[]> = {};
    for (const [key, value] of this.own()) result[key] = value;
    if (this.cookies?.length) result["set-cookie"] = [...this.cookies];
    return result;
  }

  /** The headers as a map of their own, built from Node's record the first time one is needed. */
  private own(): Map<string, string> {
    if (this.map) return this.map;
    const map = new Map<string, string>();
    const node = this.node;
    this.node = undefined;
    this.map = map;
    if (node) {
      for (const key in node) {
        const value = node[key];
        if (value === undefined || key.charCodeAt(0) === COLON) continue;
        if (key === "set-cookie") this.cookies = (Array.isArray(value) ? value : [value]).map(trimmed);
        else map.set(key, typeof value === "string" ? trimmed(value) : value.map(trimmed).join(", "));
      }
    }
    return map;
  }
}

const COLON = 0x3a;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FORBIDDEN_IN_VALUE = /[\0\r\n]/;

function checkName(name: string): string {
  if (!TOKEN.test(name)) throw new TypeError(`Headers: "${name}" is an invalid header name.`);
  return name;
}

function checkValue(name: string, value: string): string {
  const normalized = trimmed(String(value));
  if (FORBIDDEN_IN_VALUE.test(normalized)) throw new TypeError(`Headers: "${normalized}" is an invalid header value for "${name}".`);
  return normalized;
}

/** Leading and trailing HTTP whitespace removed, as the Fetch standard normalizes a value. */
function trimmed(value: string): string {
  const last = value.length - 1;
  if (last < 0 || (!isHttpWhitespace(value.charCodeAt(0)) && !isHttpWhitespace(value.charCodeAt(last)))) return value;
  let start = 0;
  let end = last;
  while (start <= end && isHttpWhitespace(value.charCodeAt(start))) start++;
  while (end >= start && isHttpWhitespace(value.charCodeAt(end))) end--;
  return value.slice(start, end + 1);
}

function isHttpWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}
