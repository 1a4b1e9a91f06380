/** Fields that identify a person. A publisher sees events with these replaced. */
const PERSONAL_FIELDS = new Set(["email", "displayName", "display_name"]);
export const REDACTED = "[redacted]";

/** What replaces personal data for good once the account is closed (the tombstone). */
export const ERASED = "[erased]";

/** A deep copy of a decoded payload (protobuf JSON) with personal data replaced by `replacement`. */
export function redactPersonalData(value: unknown, replacement = REDACTED): unknown {
  if (Array.isArray(value)) return value.map((item) => redactPersonalData(item, replacement));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, field]) => [key, PERSONAL_FIELDS.has(key) && typeof field === "string" ? replacement : redactPersonalData(field, replacement)]),
    );
  }
  return value;
}

/** The user an event is about: the first `userId` found in its payload, or "". */
export function userIdOf(value: unknown): string {
  if (value !== null && typeof value === "object") {
    for (const [key, field] of Object.entries(value)) {
      if (key === "userId" && typeof field === "string") return field;
      const nested = userIdOf(field);
      if (nested) return nested;
    }
  }
  return "";
}
