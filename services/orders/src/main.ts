import { runService } from "@meshwork/platform";
import { OrdersService } from "@meshwork/proto/meshwork/orders/v1/orders_pb.js";
import { access } from "./access.ts";
import { ordersConfig, sagaTiming, serviceClient } from "./config.ts";
import { withdrawAccountOrders } from "./account-closure.ts";
import { ORDERS_STREAM, ordersConsumers } from "./events.ts";
import { registerSagaGauges } from "./metrics.ts";
import { Orders } from "./orders.ts";
import { ordersRoutes } from "./rpc.ts";
import { SagaRunner } from "./saga-runner.ts";
import { ServiceToken } from "./service-token.ts";
import { rpcSteps } from "./steps.ts";
import { migrations, type OrdersTables } from "./store.ts";

const config = ordersConfig();

await runService<OrdersTables, typeof config>({
  name: "orders",
  config,
  migrations,
  services: [OrdersService],
  access,
  streams: [ORDERS_STREAM],
  setup(context) {
    registerSagaGauges(context.database.db);
    // The orchestrator: resumes every unfinished saga it finds, then each new one as it is placed.
    const token = new ServiceToken(config.IDENTITY_URL, () => serviceClient(config));
    const steps = rpcSteps({ paymentsUrl: config.PAYMENTS_URL, shippingUrl: config.SHIPPING_URL, token, timeoutMs: config.SAGA_STEP_TIMEOUT_MS });
    const runner = new SagaRunner({ db: context.database.db, unitOfWork: context.unitOfWork, steps, log: context.log.child({ component: "saga" }), ...sagaTiming(config) });
    return {
      routes: ordersRoutes(new Orders(context, () => runner.nudge())),
      consumers: ordersConsumers(async (trx, userId) => {
        await withdrawAccountOrders(trx, userId);
        // Before the commit the runner may not see the withdrawal yet; its next poll does.
        runner.nudge();
      }),
      workers: [runner],
    };
  },
});
