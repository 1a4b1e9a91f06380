import { runService } from "@meshwork/platform";
import { PaymentsService } from "@meshwork/proto/meshwork/payments/v1/payments_pb.js";
import { access } from "./access.ts";
import { paymentsConfig } from "./config.ts";
import { PAYMENTS_STREAM } from "./events.ts";
import { Payments } from "./payments.ts";
import { paymentsRoutes } from "./rpc.ts";
import { migrations, type PaymentsTables } from "./store.ts";

const config = paymentsConfig();

await runService<PaymentsTables, typeof config>({
  name: "payments",
  config,
  migrations,
  services: [PaymentsService],
  access,
  streams: [PAYMENTS_STREAM],
  setup: (context) => ({ routes: paymentsRoutes(new Payments(context)) }),
});
