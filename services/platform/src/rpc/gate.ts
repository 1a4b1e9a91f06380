import type { JsonReadOptions, JsonWriteOptions } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { isDecodingFailure, malformedRequest, rewriteAsMalformedRequest } from "../errors.ts";
import { rpcServerDuration } from "../metrics.ts";
import { onCallAbort } from "./call-abort.ts";
import { protocolOf } from "./interceptors.ts";

/**
 * Connect's request gate (connect-es 2.3 `requestGate`): runs for every call of every protocol
 * after the headers arrive and before the body is read, decompressed or parsed.
 */
export type RequestGate = (context: HandlerContext) => Promise<void>;

export type JsonRequestOptions = Partial<JsonReadOptions & JsonWriteOptions> & { textDecoder: TextDecoder };

/**
 * Connect JSON bodies decode with a fatal UTF-8 decoder: the default one replaces invalid bytes
 * with U+FFFD and lets them reach the handler, where the binary formats refuse them. Connect's
 * JSON serialization reads `textDecoder` from its JSON options, though the handler options type
 * does not name it. Unknown JSON fields are ignored, as unknown binary fields are kept: old
 * servers accept newer clients.
 */
export const strictJson: JsonRequestOptions = {
  ignoreUnknownFields: true,
  textDecoder: new TextDecoder("utf-8", { fatal: true }),
};

interface CallInput {
  /** Set once the request message has decoded: from then on a failure is not the body's fault. */
  decoded: boolean;
}

const callInputKey = createContextKey<CallInput | undefined>(undefined, { description: "meshwork call input" });

/**
 * Where a call's input is checked before anything else, and where a body that cannot be decoded
 * becomes INVALID_ARGUMENT.
 *
 * `authorize` runs first, on the headers alone (the token): a caller without a valid token to a
 * protected method is refused before its body is read, so no one can make the parser work, or
 * drive its error rate, without a token.
 *
 * Connect decodes a unary request before the first interceptor runs and, for the binary formats,
 * answers a body it cannot parse with INTERNAL and the parser's text. No interceptor ever sees
 * that error. The one moment the platform holds it is when the protocol handler aborts the call's
 * signal with it, just before serializing it: the gate listens there and rewrites a decoding
 * failure into the fixed INVALID_ARGUMENT answer (errors.ts). The listener only acts while the
 * message has not decoded yet (`requestDecodedInterceptor` marks that), so an INTERNAL from a
 * handler stays INTERNAL. Calls that end here never reach the telemetry interceptor, so the gate
 * records them in the same duration histogram, with their code.
 */
export function requestGate(authorize: (context: HandlerContext) => Promise<void>): RequestGate {
  return async (context) => {
    const started = performance.now();
    const input: CallInput = { decoded: false };
    context.values.set(callInputKey, input);
    onCallAbort(context, (reason) => {
      if (input.decoded) return;
      if (!(reason instanceof ConnectError)) return;
      if (isDecodingFailure(reason)) rewriteAsMalformedRequest(reason);
      rpcServerDuration.record(performance.now() - started, {
        "rpc.service": context.service.typeName,
        "rpc.method": context.method.name,
        "rpc.protocol": protocolOf(context.requestHeader.get("content-type")),
        code: Code[reason.code] ?? "unknown",
      });
    });
    await authorize(context);
  };
}

/**
 * The outermost interceptor: the request has decoded by the time a unary call gets here. A
 * streaming request decodes message by message inside the chain, so its messages are wrapped: a
 * decoding failure there is mapped before any other interceptor sees it.
 */
export function requestDecodedInterceptor(): Interceptor {
  return (next) => async (req) => {
    const input = req.contextValues.get(callInputKey);
    if (input) input.decoded = true;
    if (!req.stream) return next(req);
    return next({ ...req, message: mapDecodingFailures(req.message) });
  };
}

async function* mapDecodingFailures<T>(messages: AsyncIterable<T>): AsyncIterable<T> {
  const iterator = messages[Symbol.asyncIterator]();
  for (;;) {
    let result: IteratorResult<T>;
    try {
      result = await iterator.next();
    } catch (error) {
      const connectError = ConnectError.from(error);
      throw isDecodingFailure(connectError) ? malformedRequest() : connectError;
    }
    if (result.done) return;
    yield result.value;
  }
}
