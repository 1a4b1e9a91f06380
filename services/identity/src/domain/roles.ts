import { InvalidArgumentError, ROLES, type Role } from "@meshwork/platform";

export const DEFAULT_ROLES: Role[] = ["member"];

export function parseRoles(raw: readonly string[]): Role[] {
  const unique = [...new Set(raw)];
  if (unique.length === 0) throw new InvalidArgumentError("roles must not be empty");
  for (const role of unique) {
    if (!(ROLES as readonly string[]).includes(role)) throw new InvalidArgumentError(`unknown role ${role}; expected one of ${ROLES.join(", ")}`);
  }
  return unique as Role[];
}
