import { defineAccess, rulesFor } from "@meshwork/platform";
import { PaymentsService } from "@meshwork/proto/meshwork/payments/v1/payments_pb.js";

/**
 * payments' access table: enforced by the platform's request gate and rendered into the mesh
 * policy. Moving money is not a member's call: orders' saga calls it with its service token
 * (docs/saga.md), and only the orders workload may reach these paths in the mesh.
 */
export const access = defineAccess(
  rulesFor(PaymentsService, {
    Charge: ["admin"],
    Refund: ["admin"],
  }),
  {
    orders: ["/meshwork.payments.v1.PaymentsService/Charge", "/meshwork.payments.v1.PaymentsService/Refund"],
  },
);
