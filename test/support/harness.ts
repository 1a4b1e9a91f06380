import { LocalSystem, type LocalSystemOptions, type Protocol } from "../../scripts/lib/local-system.ts";

export type { Protocol } from "../../scripts/lib/local-system.ts";
export const PROTOCOLS: Protocol[] = ["grpc", "connect", "grpc-web"];

/** Fast hashing for tests that sign in hundreds of times; the timing test sets its own. */
export const FAST_ARGON2 = { ARGON2_MEMORY_KIB: "1024", ARGON2_ITERATIONS: "1" };
export const ADMIN = { email: "admin@meshwork.test", password: "an-admin-passphrase-for-tests" };

/** The system under test: JSON logs, a known admin, cheap hashing, and a short JWKS refetch floor. */
export class TestSystem extends LocalSystem {
  constructor(options: Omit<LocalSystemOptions, "defaultEnv" | "tempPrefix"> = {}) {
    super({
      ...options,
      tempPrefix: "meshwork-test-",
      defaultEnv: {
        MESHWORK_ADMIN_EMAIL: ADMIN.email,
        MESHWORK_ADMIN_PASSWORD: ADMIN.password,
        JWKS_REFETCH_FLOOR_MS: "200",
        ...FAST_ARGON2,
      },
    });
  }
}

export async function adminToken(system: TestSystem): Promise<string> {
  return system.signIn(ADMIN.email, ADMIN.password);
}
