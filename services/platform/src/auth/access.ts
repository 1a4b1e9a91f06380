import type { DescService } from "@bufbuild/protobuf";
import { REFLECTION_PATHS } from "../rpc/reflection.ts";

/** The roles identity assigns to users. */
export const ROLES = ["member", "publisher", "admin"] as const;
export type Role = (typeof ROLES)[number];

/**
 * The role of a service token (identity's client-credentials grant). It is never a user role:
 * SetUserRoles refuses it, and a service token carries no user role beside it.
 */
export const SERVICE_ROLE = "service" as const;

/** Open to anyone, with or without a token. */
export const PUBLIC = "public" as const;
/** Any signed-in user, whatever the role. Service tokens are not users: they are not admitted. */
export const SIGNED_IN: readonly Role[] = ROLES;

/** Admits the service token of one named service (its `svc` claim), e.g. `byService("orders")`. */
export type ServiceGrant = `service:${string}`;
export function byService(name: string): ServiceGrant {
  return `service:${name}`;
}

/** A user role, or one service by name. */
export type Grant = Role | ServiceGrant;
export type MethodAccess = typeof PUBLIC | readonly Grant[];

/**
 * A service's one access table: every RPC path it serves -> public, or the user roles and the
 * services (by name) allowed, side by side. The request gate enforces it, and the chart's
 * Istio AuthorizationPolicies are generated from it (scripts/generate-access.ts), so the two
 * cannot drift: `callers` (which workloads the mesh lets in on which paths) is derived from the
 * service grants, plus the public paths a service calls without a token.
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

/**
 * `publicCallers`: the services that call this one's PUBLIC paths directly (identity's token
 * grant), which no grant can name. Every other caller comes from the `byService` grants.
 */
export function defineAccess(methods: Record<string, MethodAccess>, publicCallers: Record<string, string[]> = {}): AccessTable {
  const all: Record<string, MethodAccess> = {
    "/grpc.health.v1.Health/Check": PUBLIC,
    "/grpc.health.v1.Health/Watch": PUBLIC,
    // Reflection describes only the API, which the .proto files publish anyway; grpcurl and
    // buf curl need it before they can send a token.
    ...Object.fromEntries(REFLECTION_PATHS.map((path) => [path, PUBLIC])),
    ...methods,
  };
  const callers: Record<string, string[]> = {};
  for (const [caller, paths] of Object.entries(publicCallers)) {
    for (const path of paths) {
      if (all[path] !== PUBLIC) throw new Error(`${caller} is listed as calling ${path} without a token, but ${path} is not public: grant byService("${caller}") instead`);
      (callers[caller] ??= []).push(path);
    }
  }
  for (const [path, rule] of Object.entries(all)) {
    if (rule === PUBLIC) continue;
    for (const caller of servicesIn(rule)) (callers[caller] ??= []).push(path);
  }
  return { methods: all, callers };
}

/** The services a rule admits by name. */
export function servicesIn(rule: MethodAccess): string[] {
  if (rule === PUBLIC) return [];
  return rule.filter((grant) => grant.startsWith("service:")).map((grant) => grant.slice("service:".length));
}

/** The user roles a rule admits. */
export function rolesIn(rule: MethodAccess): Role[] {
  if (rule === PUBLIC) return [];
  return rule.filter((grant): grant is Role => (ROLES as readonly string[]).includes(grant));
}
