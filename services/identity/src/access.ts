import { defineAccess, PUBLIC, rulesFor, SIGNED_IN } from "@meshwork/platform";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";

/** identity's access table: enforced by the platform's request gate and rendered into the mesh policy. */
export const access = defineAccess(
  rulesFor(IdentityService, {
    SignUp: PUBLIC,
    SignIn: PUBLIC,
    GetJwks: PUBLIC,
    SignOut: SIGNED_IN,
    SetUserRoles: ["admin"],
  }),
  // orders signs in as its service account to drive the checkout saga (docs/saga.md).
  { orders: [`/${IdentityService.typeName}/SignIn`] },
);
