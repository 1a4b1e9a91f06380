import { metrics } from "@opentelemetry/api";

/**
 * The platform's instruments, in one place so docs/observability.md can list them all. They are
 * no-ops until telemetry.ts registers the SDK, so code may record unconditionally.
 */
const meter = metrics.getMeter("@meshwork/platform");

export const rpcServerDuration = meter.createHistogram("rpc.server.duration", {
  description: "Duration of inbound RPCs, by service, method, protocol and status code",
  unit: "ms",
  advice: { explicitBucketBoundaries: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000] },
});

export const eventsPublished = meter.createCounter("meshwork.events.published", {
  description: "Events the outbox relay published to JetStream, by subject",
});

export const eventsConsumed = meter.createCounter("meshwork.events.consumed", {
  description: "Events a consumer handled and committed, by consumer and outcome (applied or duplicate)",
});

export const eventsRedelivered = meter.createCounter("meshwork.events.redelivered", {
  description: "Deliveries that were retries of an earlier delivery, by consumer",
});

export const eventsDeadLettered = meter.createCounter("meshwork.events.dead_lettered", {
  description: "Events moved to the DEADLETTER stream after their last try, by consumer",
});

export const consumerLag = meter.createObservableGauge("meshwork.consumer.lag", {
  description: "Messages in the stream that the consumer has not yet been delivered, by consumer",
});

export const outboxBacklog = meter.createObservableGauge("meshwork.outbox.backlog", {
  description: "Outbox entries committed but not yet published",
});

export const outboxOldestAge = meter.createObservableGauge("meshwork.outbox.oldest_age", {
  description: "Age of the oldest unpublished outbox entry",
  unit: "s",
});

/** For a service's own business metrics (sign-ins by outcome, for example). */
export const serviceMeter = meter;
