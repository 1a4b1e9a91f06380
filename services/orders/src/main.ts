import { runService } from "@meshwork/platform";
import { OrdersService } from "@meshwork/proto/meshwork/orders/v1/orders_pb.js";
import { access } from "./access.ts";
import { ordersConfig, serviceAccount } from "./config.ts";
import { ORDERS_STREAM } from "./events.ts";
import { registerSagaGauges } from "./metrics.ts";
import { Orders } from "./orders.ts";
import { ordersRoutes } from "./rpc.ts";
import { SagaRunner } from "./saga-runner.ts";
import { ServiceToken } from "./service-token.ts";
import { rpcSteps } from "./steps.ts";
import { migrations, type OrdersTables } from "./store.ts";

const config = ordersConfig();
let runner: SagaRunner | undefined;

const service = await runService<OrdersTables, typeof config>({
  name: "orders",
  config,
  migrations,
  services: [OrdersService],
  access,
  streams: [ORDERS_STREAM],
  routes: (router, context) => ordersRoutes(new Orders(context, () => runner?.nudge()))(router),
});

// The orchestrator: resumes every unfinished saga it finds, then each new one as it is placed.
const { context } = service;
registerSagaGauges(context.database.db);
runner = new SagaRunner({
  db: context.database.db,
  unitOfWork: (work) => context.unitOfWork(work),
  steps: rpcSteps({
    paymentsUrl: config.PAYMENTS_URL,
    shippingUrl: config.SHIPPING_URL,
    token: new ServiceToken(config.IDENTITY_URL, () => serviceAccount(config)),
    timeoutMs: config.SAGA_STEP_TIMEOUT_MS,
    crashAfterCharge: config.MESHWORK_FAULT_CRASH_AFTER_CHARGE === "1",
  }),
  log: context.log.child({ component: "saga" }),
  pollMs: config.SAGA_POLL_MS,
  leaseMs: config.SAGA_LEASE_MS,
  retryBaseMs: config.SAGA_RETRY_BASE_MS,
  retryMaxMs: config.SAGA_RETRY_MAX_MS,
});
runner.start();
for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => void runner?.stop());
