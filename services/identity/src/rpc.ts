import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { clientAddressKey, requirePrincipal } from "@meshwork/platform";
import {
  GetJwksResponseSchema,
  IdentityService,
  SetUserRolesResponseSchema,
  SignInResponseSchema,
  SignOutResponseSchema,
  SignUpResponseSchema,
  UserSchema,
  type User,
} from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import type { Accounts } from "./accounts.ts";
import type { SigningKeys } from "./signing-keys.ts";
import type { UserRecord } from "./store.ts";

/** Thin handlers: the platform has checked the request against its contract rules; call the use case, shape the answer. */
export function identityRoutes(accounts: Accounts, keys: SigningKeys) {
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
      getJwks() {
        return create(GetJwksResponseSchema, { jwksJson: JSON.stringify(keys.jwks()) });
      },
    });
}

function toUser(user: UserRecord): User {
  return create(UserSchema, { id: user.id, email: user.email, displayName: user.displayName, roles: user.roles });
}
