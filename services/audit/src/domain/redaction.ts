/** Fields that identify a person. A publisher sees events with these replaced. */
const PERSONAL_FIELDS = new Set(["email", "displayName", "display_name"]);
export const REDACTED = "[redacted]";

/** A deep copy of a decoded payload (protobuf JSON) with personal data replaced. */
export function redactPersonalData(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactPersonalData);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, field]) => [key, PERSONAL_FIELDS.has(key) && typeof field === "string" ? REDACTED : redactPersonalData(field)]),
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
