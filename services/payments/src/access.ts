import { byService, defineAccess, rulesFor } from "@meshwork/platform";
import { PaymentsService } from "@meshwork/proto/meshwork/payments/v1/payments_pb.js";

/**
 * payments' access table: enforced by the platform's request gate and rendered into the mesh
 * policy. Moving money is no user's call, not even an admin's: only orders' saga, with its own
 * service token (docs/saga.md), and only the orders workload may reach these paths in the mesh.
 */
export const access = defineAccess(
  rulesFor(PaymentsService, {
    Charge: [byService("orders")],
    Refund: [byService("orders")],
  }),
);
