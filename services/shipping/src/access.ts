import { defineAccess, rulesFor } from "@meshwork/platform";
import { ShippingService } from "@meshwork/proto/meshwork/shipping/v1/shipping_pb.js";

/**
 * shipping's access table: enforced by the platform's request gate and rendered into the mesh
 * policy. orders' saga calls it with its service token (docs/saga.md); members order, they do not ship.
 */
export const access = defineAccess(
  rulesFor(ShippingService, {
    CreateShipment: ["admin"],
  }),
  {
    orders: ["/meshwork.shipping.v1.ShippingService/CreateShipment"],
  },
);
