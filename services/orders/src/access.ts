import { defineAccess, rulesFor, SIGNED_IN } from "@meshwork/platform";
import { OrdersService } from "@meshwork/proto/meshwork/orders/v1/orders_pb.js";

/**
 * orders' access table: enforced by the platform's request gate and rendered into the mesh
 * policy. GetOrder answers only the order's owner or an admin (checked in the handler).
 */
export const access = defineAccess(
  rulesFor(OrdersService, {
    PlaceOrder: SIGNED_IN,
    GetOrder: SIGNED_IN,
  }),
);
