import { readFileSync } from "node:fs";
import { InvalidArgumentError } from "@meshwork/platform";

const EMAIL = /^[^\s@]{1,64}@[^\s@.]+(\.[^\s@.]+)+$/;
const MAX_PASSWORD_LENGTH = 256;
const MAX_DISPLAY_NAME_LENGTH = 100;

/** Emails compare case-insensitively and without surrounding space: one account per mailbox. */
export function canonicalEmail(raw: string): string {
  return raw.trim().toLowerCase();
}

/** The canonical form of an email a new account may use; anything that is not an address is refused. */
export function normaliseEmail(raw: string): string {
  const email = canonicalEmail(raw);
  if (email.length > 254 || !EMAIL.test(email)) throw new InvalidArgumentError("email is not a valid address");
  return email;
}

export function validateDisplayName(raw: string): string {
  const name = raw.trim();
  if (name.length === 0) throw new InvalidArgumentError("display_name is required");
  if (name.length > MAX_DISPLAY_NAME_LENGTH) throw new InvalidArgumentError(`display_name is longer than ${MAX_DISPLAY_NAME_LENGTH} characters`);
  return name;
}

const commonPasswords = new Set(
  readFileSync(new URL("./common-passwords.txt", import.meta.url), "utf8")
    .split("\n")
    .map((line) => line.trim().toLowerCase())
    .filter(Boolean),
);

/**
 * NIST SP 800-63B style: a minimum length, a maximum that bounds hashing cost, and no password
 * from the list of the most common ones. No composition rules, which only make passwords worse.
 */
export function checkPasswordPolicy(password: string, minLength: number): void {
  if (password.length < minLength) throw new InvalidArgumentError(`password must be at least ${minLength} characters`);
  if (password.length > MAX_PASSWORD_LENGTH) throw new InvalidArgumentError(`password must be at most ${MAX_PASSWORD_LENGTH} characters`);
  if (commonPasswords.has(password.toLowerCase())) throw new InvalidArgumentError("password is too common; choose another");
}
