import type { DescService } from "@bufbuild/protobuf";
import { REFLECTION_PATHS } from "../rpc/reflection.ts";

export const ROLES = ["member", "publisher", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** Open to anyone, with or without a token. */
export const PUBLIC = "public" as const;
/** Any signed-in caller, whatever the role. */
export const SIGNED_IN: readonly Role[] = ROLES;

export type MethodAccess = typeof PUBLIC | readonly Role[];

/**
 * A service's one access table: every RPC path it serves -> public or the roles allowed, and the
 * other services that call it on which paths. The request gate enforces it, and the chart's
 * Istio AuthorizationPolicies are generated from it (scripts/generate-access.ts), so the two
 * cannot drift.
 */
export interface AccessTable {
  methods: Record<string, MethodAccess>;
  callers: Record<string, string[]>;
}

/** The rules of one protobuf service, keyed by its method names as written in the .proto file. */
export type ServiceRules<S extends DescService> = Record<S["methods"][number]["name"], MethodAccess>;

export function rulesFor<S extends DescService>(service: S, rules: ServiceRules<S>): Record<string, MethodAccess> {
  const table: Record<string, MethodAccess> = {};
  for (const method of service.methods) {
    table[`/${service.typeName}/${method.name}`] = (rules as Record<string, MethodAccess>)[method.name]!;
  }
  return table;
}

export function defineAccess(methods: Record<string, MethodAccess>, callers: Record<string, string[]> = {}): AccessTable {
  return {
    methods: {
      "/grpc.health.v1.Health/Check": PUBLIC,
      "/grpc.health.v1.Health/Watch": PUBLIC,
      // Reflection describes only the API, which the .proto files publish anyway; grpcurl and
      // buf curl need it before they can send a token.
      ...Object.fromEntries(REFLECTION_PATHS.map((path) => [path, PUBLIC])),
      ...methods,
    },
    callers,
  };
}
