import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node";

/**
 * CloudEvents 1.0 in binary mode over NATS: the attributes travel as `ce-*` headers, the body is
 * the protobuf message. `ce-id` doubles as `Nats-Msg-Id`, so the stream drops a republished copy.
 */
export interface EventEnvelope {
  id: string;
  type: string;
  source: string;
  subject: string;
  time: Date;
  traceparent?: string;
  tracestate?: string;
}

export const CONTENT_TYPE_PROTOBUF = "application/protobuf";

export function toHeaders(envelope: EventEnvelope): MsgHdrs {
  const headers = natsHeaders();
  headers.set("ce-specversion", "1.0");
  headers.set("ce-id", envelope.id);
  headers.set("ce-source", envelope.source);
  headers.set("ce-type", envelope.type);
  headers.set("ce-subject", envelope.subject);
  headers.set("ce-time", envelope.time.toISOString());
  headers.set("datacontenttype", CONTENT_TYPE_PROTOBUF);
  headers.set("content-type", CONTENT_TYPE_PROTOBUF);
  if (envelope.traceparent) headers.set("traceparent", envelope.traceparent);
  if (envelope.tracestate) headers.set("tracestate", envelope.tracestate);
  return headers;
}

export class MalformedEventError extends Error {
  override name = "MalformedEventError";
}

/** Reads the envelope back; a message without the required attributes is malformed, not retryable. */
export function fromHeaders(headers: MsgHdrs | undefined, natsSubject: string): EventEnvelope {
  // One pass over the headers: each get() would list and filter every key again.
  let id, type, source, time, specversion, traceparent, tracestate;
  for (const [name, values] of headers ?? []) {
    const value = values[0] || undefined;
    switch (name) {
      case "ce-id":
        id = value;
        break;
      case "ce-type":
        type = value;
        break;
      case "ce-source":
        source = value;
        break;
      case "ce-time":
        time = value;
        break;
      case "ce-specversion":
        specversion = value;
        break;
      case "traceparent":
        traceparent = value;
        break;
      case "tracestate":
        tracestate = value;
        break;
    }
  }
  if (!id || !type || !source || !time || specversion !== "1.0") {
    throw new MalformedEventError(`message on ${natsSubject} lacks CloudEvents attributes`);
  }
  return { id, type, source, subject: natsSubject, time: new Date(time), traceparent, tracestate };
}

/** The trace id inside a W3C traceparent (`00-<trace id>-<span id>-<flags>`), or "". */
export function traceIdOf(traceparent: string | undefined): string {
  return traceparent?.split("-")[1] ?? "";
}
