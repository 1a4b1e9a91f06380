import { runService } from "@meshwork/platform";
import { ShippingService } from "@meshwork/proto/meshwork/shipping/v1/shipping_pb.js";
import { access } from "./access.ts";
import { shippingConfig } from "./config.ts";
import { SHIPPING_STREAM } from "./events.ts";
import { shippingRoutes } from "./rpc.ts";
import { Shipments } from "./shipments.ts";
import { migrations, type ShippingTables } from "./store.ts";

const config = shippingConfig();

await runService<ShippingTables, typeof config>({
  name: "shipping",
  config,
  migrations,
  services: [ShippingService],
  access,
  streams: [SHIPPING_STREAM],
  setup: (context) => ({ routes: shippingRoutes(new Shipments(context)) }),
});
