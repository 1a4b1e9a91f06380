import { InvalidArgumentError } from "@meshwork/platform";

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1_000;

export interface Page<T> {
  items: T[];
  nextPageToken: string;
}

/**
 * One page of an already ordered list. The token is an opaque offset: the projection is small and
 * re-read per call, so a user who signs in between pages may shift the list by one, which is
 * acceptable for a presence view.
 */
export function pageOf<T>(items: readonly T[], pageSize: number, pageToken: string): Page<T> {
  if (pageSize < 0) throw new InvalidArgumentError("page_size must not be negative");
  const size = pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(pageSize, MAX_PAGE_SIZE);
  const start = pageToken ? offsetOf(pageToken) : 0;
  const end = start + size;
  return { items: items.slice(start, end), nextPageToken: end < items.length ? Buffer.from(`o:${end}`).toString("base64url") : "" };
}

function offsetOf(token: string): number {
  const match = /^o:(\d{1,9})$/.exec(Buffer.from(token, "base64url").toString());
  if (!match) throw new InvalidArgumentError("page_token is not valid");
  return Number(match[1]);
}
