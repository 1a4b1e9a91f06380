import { JetStreamApiCodes, JetStreamApiError, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager } from "@nats-io/jetstream";
import { nanos, type NatsConnection } from "@nats-io/transport-node";

/** A JetStream stream a service owns: one per domain, file storage, a de-duplication window. */
export interface StreamSpec {
  name: string;
  subjects: string[];
  duplicateWindowMs?: number;
  maxAgeMs?: number;
}

/** Dead letters of every consumer: `deadletter.<stream>.<consumer>`. Every consuming service ensures it. */
export const DEADLETTER_STREAM: StreamSpec = {
  name: "DEADLETTER",
  subjects: ["deadletter.>"],
  duplicateWindowMs: 10 * 60_000,
};

export function deadLetterSubject(stream: string, consumer: string): string {
  return `deadletter.${stream}.${consumer}`;
}

/** Creates each stream or brings its configuration up to date; safe to run at every start. */
export async function ensureStreams(connection: NatsConnection, streams: StreamSpec[]): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(connection);
  for (const spec of streams) {
    const config = {
      name: spec.name,
      subjects: spec.subjects,
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      duplicate_window: nanos(spec.duplicateWindowMs ?? 2 * 60_000),
      max_age: nanos(spec.maxAgeMs ?? 0),
    };
    const exists = await jsm.streams.info(spec.name).then(
      () => true,
      () => false,
    );
    if (exists) await jsm.streams.update(spec.name, config);
    else await jsm.streams.add(config);
  }
  return jsm;
}

/**
 * Whether a JetStream API error says the stream does not exist yet. Each stream is created by the
 * service that produces to it, and in a cluster pods start in any order, so a consumer may come up
 * before its producer: it waits for the stream, and that wait is not a fault (there is nothing to
 * consume yet, so the consumer is not behind). Any other error is.
 */
export function isMissingStream(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;
}
