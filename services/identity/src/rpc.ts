import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { clientAddressKey, requirePrincipal } from "@meshwork/platform";
import {
  AccountClosureSchema,
  AccountClosureState,
  CloseAccountResponseSchema,
  GetAccountClosureResponseSchema,
  GetJwksResponseSchema,
  IdentityService,
  SetUserRolesResponseSchema,
  SignInResponseSchema,
  SignOutResponseSchema,
  SignUpResponseSchema,
  UserSchema,
  type AccountClosure,
  type User,
} from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import type { Accounts } from "./accounts.ts";
import type { AccountClosures } from "./closures.ts";
import { awaiting } from "./domain/closure.ts";
import type { ServiceClients } from "./service-clients.ts";
import type { SigningKeys } from "./signing-keys.ts";
import type { ClosureRecord, UserRecord } from "./store.ts";

/** Thin handlers: the platform has checked the request against its contract rules; call the use case, shape the answer. */
export function identityRoutes(accounts: Accounts, closures: AccountClosures, keys: SigningKeys, serviceClients: ServiceClients) {
  return (router: ConnectRouter) =>
    router.service(IdentityService, {
      async signUp(req) {
        const user = await accounts.signUp({ email: req.email, password: req.password, displayName: req.displayName });
        return create(SignUpResponseSchema, { user: toUser(user) });
      },
      async signIn(req, ctx) {
        const result = await accounts.signIn({ email: req.email, password: req.password }, ctx.values.get(clientAddressKey));
        return create(SignInResponseSchema, {
          accessToken: result.accessToken,
          expiresAt: timestampFromMs(result.expiresAt.getTime()),
          user: toUser(result.user),
        });
      },
      async signOut(_req, ctx) {
        await accounts.signOut(requirePrincipal(ctx));
        return create(SignOutResponseSchema, {});
      },
      async setUserRoles(req, ctx) {
        const user = await accounts.setRoles(req.userId, req.roles, requirePrincipal(ctx));
        return create(SetUserRolesResponseSchema, { user: toUser(user) });
      },
      issueServiceToken(req) {
        return serviceClients.issue(req.clientId, req.clientSecret);
      },
      async closeAccount(req, ctx) {
        return create(CloseAccountResponseSchema, { closure: toClosure(await closures.request(req.userId, requirePrincipal(ctx)), closures.expected) });
      },
      async getAccountClosure(req, ctx) {
        return create(GetAccountClosureResponseSchema, { closure: toClosure(await closures.get(req.userId, requirePrincipal(ctx)), closures.expected) });
      },
      getJwks() {
        return create(GetJwksResponseSchema, { jwksJson: JSON.stringify(keys.jwks()) });
      },
    });
}

function toUser(user: UserRecord): User {
  return create(UserSchema, { id: user.id, email: user.email, displayName: user.displayName, roles: user.roles });
}

function toClosure(closure: ClosureRecord, expected: readonly string[]): AccountClosure {
  return create(AccountClosureSchema, {
    userId: closure.userId,
    state: AccountClosureState[closure.state],
    requestedAt: timestampFromMs(closure.requestedAt),
    reported: closure.reported,
    awaiting: awaiting(expected, closure.reported),
    closedAt: closure.closedAt === null ? undefined : timestampFromMs(closure.closedAt),
  });
}
