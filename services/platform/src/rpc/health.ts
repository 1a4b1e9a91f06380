import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "@meshwork/proto/grpc/health/v1/health_pb.js";

export { Health };

/**
 * grpc.health.v1.Health on the RPC port, for Kubernetes gRPC probes and load balancers. The empty
 * service name and each served service report the process's readiness.
 */
export function registerHealth(router: ConnectRouter, serviceNames: string[], isReady: () => boolean): void {
  const known = new Set(["", ...serviceNames]);
  const status = (service: string) => {
    // Fixed text: the name is the caller's own input, and echoing it would echo a megabyte.
    if (!known.has(service)) throw new ConnectError("unknown service", Code.NotFound);
    return isReady() ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
  };
  router.service(Health, {
    check: (req) => create(HealthCheckResponseSchema, { status: status(req.service) }),
    async *watch(req, ctx) {
      let last: ServingStatus | undefined;
      while (!ctx.signal.aborted) {
        const current = status(req.service);
        if (current !== last) yield create(HealthCheckResponseSchema, { status: current });
        last = current;
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    },
  });
}
