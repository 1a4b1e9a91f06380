import { InvalidArgumentError } from "@meshwork/platform";

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

export function pageSize(requested: number): number {
  if (requested < 0) throw new InvalidArgumentError("page_size must not be negative");
  return requested === 0 ? DEFAULT_PAGE_SIZE : Math.min(requested, MAX_PAGE_SIZE);
}

/** Page tokens are opaque to callers: the id of the last event of the previous page. */
export function encodePageToken(lastId: string): string {
  return Buffer.from(`v1:${lastId}`).toString("base64url");
}

export function decodePageToken(token: string): string | undefined {
  if (!token) return undefined;
  const decoded = Buffer.from(token, "base64url").toString();
  if (!decoded.startsWith("v1:") || decoded.length < 4) throw new InvalidArgumentError("page_token is not valid");
  return decoded.slice(3);
}
