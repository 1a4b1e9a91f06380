import { defineAccess, PUBLIC, rulesFor, SIGNED_IN } from "@meshwork/platform";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";

/** identity's access table: enforced by the platform's request gate and rendered into the mesh policy. */
export const access = defineAccess(
  rulesFor(IdentityService, {
    SignUp: PUBLIC,
    SignIn: PUBLIC,
    GetJwks: PUBLIC,
    // The client secret is the credential; the mesh admits only the registered services' workloads.
    IssueServiceToken: PUBLIC,
    SignOut: SIGNED_IN,
    SetUserRoles: ["admin"],
    // The owner or an admin: the use case checks which account the caller may close or inspect.
    CloseAccount: SIGNED_IN,
    GetAccountClosure: SIGNED_IN,
  }),
  // orders fetches its own service token to drive the checkout saga (docs/saga.md).
  { orders: [`/${IdentityService.typeName}/IssueServiceToken`] },
);
