/** A ZeroMQ DEALER connected to one broker endpoint, with an ordered send queue. */
import * as zmq from 'zeromq';
import { FerryError } from '../model/errors.js';
import { SendQueue } from './socket-helpers.js';
import type { ClientConnection, ClientConnectionEvents, ClientSocketOptions } from './types.js';
import { raiseSocketLimit } from './zmq-context.js';

// Before this process's first client socket (zmq-context.ts says why).
raiseSocketLimit();

const DEALER_RECONNECT_MS = 100;
const DEALER_RECONNECT_MAX_MS = 2_000;
const DEALER_HWM = 100_000;

/**
 * Handshakes that fail in a row for other reasons (a wrong server key: ZeroMQ retries it)
 * before the connection reports an authentication failure; a ZAP refusal or a protocol
 * mismatch (CURVE on one side only) reports at once.
 */
const HANDSHAKE_FAILURES_REPORTED = 3;

/** How long close() lets queued requests go out. */
const DEALER_CLOSE_FLUSH_MS = 500;

class DealerConnection implements ClientConnection {
  // A send that fails (closed underneath us, or the pipe is full) is a request that times out
  // and is retried by the client.
  private readonly out: SendQueue;
  private closed = false;

  constructor(
    private readonly sock: zmq.Dealer,
    readonly endpoint: string,
  ) {
    this.out = new SendQueue(sock);
  }

  send(frames: Buffer[]): void {
    this.out.push(frames);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Let queued messages go out before closing (sends made meanwhile still queue).
    await this.out.stop(DEALER_CLOSE_FLUSH_MS);
    this.sock.close();
  }
}

export function connectDealer(
  endpoint: string,
  events: ClientConnectionEvents,
  options: ClientSocketOptions = {},
): ClientConnection {
  const sock = new zmq.Dealer({
    linger: 0,
    sendHighWaterMark: DEALER_HWM,
    receiveHighWaterMark: DEALER_HWM,
    reconnectInterval: DEALER_RECONNECT_MS,
    reconnectMaxInterval: DEALER_RECONNECT_MAX_MS,
    ...(options.curve
      ? {
          curveServerKey: options.curve.serverKey,
          curvePublicKey: options.curve.publicKey,
          curveSecretKey: options.curve.secretKey,
        }
      : {}),
  });
  // The observer starts before connect: events that happen before it watches are lost. It
  // lives as long as the socket: zeromq.js's Observer.close() leaves libzmq's monitor running
  // into a closed pipe, which stalls the socket's I/O (its next disconnect is never handled).
  if (events.onConnect || events.onDisconnect || events.onConnectRetry || events.onAuthFailed) {
    const observer = sock.events;
    let failedHandshakes = 0;
    void (async () => {
      try {
        for await (const ev of observer) {
          if (ev.type === 'connect') events.onConnect?.();
          else if (ev.type === 'disconnect') events.onDisconnect?.();
          else if (ev.type === 'connect:retry') events.onConnectRetry?.();
          else if (ev.type === 'handshake') failedHandshakes = 0;
          else if (ev.type === 'handshake:error:auth')
            events.onAuthFailed?.('the broker refused this client key (not in its auth file)');
          else if (ev.type === 'handshake:error:protocol')
            // Fatal, and ZeroMQ does not retry: e.g. CURVE on one side only.
            events.onAuthFailed?.(
              `the security handshake failed (${ev.error.code ?? ev.error.message}): ` +
                'CURVE on one side only, or not a Ferry broker',
            );
          else if (
            // Only with CURVE: a plain connection's handshake fails like this only when the
            // broker goes away in the middle of it, and ZeroMQ reconnects by itself.
            options.curve &&
            ev.type === 'handshake:error:other' &&
            ++failedHandshakes === HANDSHAKE_FAILURES_REPORTED
          )
            events.onAuthFailed?.(
              `the security handshake failed ${failedHandshakes} times (${ev.error.message}): ` +
                'a wrong server key?',
            );
        }
      } catch {
        // Socket closed.
      }
    })();
  }
  try {
    sock.connect(endpoint);
  } catch (err) {
    sock.close();
    throw new FerryError(
      'CONFIG_INVALID',
      `cannot connect to ${JSON.stringify(endpoint)}: ${(err as Error).message} (expected tcp://host:port)`,
      { cause: err },
    );
  }
  const conn = new DealerConnection(sock, endpoint);
  void (async () => {
    try {
      for await (const frames of sock) events.onMessage(frames);
    } catch {
      // Socket closed.
    }
  })();
  return conn;
}
