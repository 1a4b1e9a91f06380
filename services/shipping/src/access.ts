import { byService, defineAccess, rulesFor } from "@meshwork/platform";
import { ShippingService } from "@meshwork/proto/meshwork/shipping/v1/shipping_pb.js";

/**
 * shipping's access table: enforced by the platform's request gate and rendered into the mesh
 * policy. Only orders' saga, with its own service token (docs/saga.md); members order, they do not ship.
 */
export const access = defineAccess(
  rulesFor(ShippingService, {
    CreateShipment: [byService("orders")],
  }),
);
