/** The messages notifications composes. No I/O here. */
export type NotificationKind = "farewell";

export interface Message {
  kind: NotificationKind;
  subject: string;
  body: string;
}

/** The goodbye sent when an account is closed: it says what was erased, so the user can trust it. */
export function farewell(displayName: string, sender: string): Message {
  const greeting = displayName.trim() === "" ? "Hello," : `Hello ${displayName.trim()},`;
  return {
    kind: "farewell",
    subject: "Your Meshwork account is closed",
    body: [
      greeting,
      "",
      "your account is being closed as you asked. Your sessions are ended, your open orders are",
      "cancelled and refunded, and your personal data is erased from our records.",
      "",
      `Goodbye, and thank you. ${sender}`,
    ].join("\n"),
  };
}
