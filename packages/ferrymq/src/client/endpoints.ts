/**
 * The broker endpoints a connection uses in turn, and — until the first session — which of
 * them answer at all: an endpoint that refuses the connection (ZeroMQ's connect:retry event)
 * or accepts none within the connect timeout is unreachable, so connect() moves on to the next
 * or fails fast with UNREACHABLE instead of waiting out the request timeout. After the first
 * session the socket's own reconnects take over, as for any disconnect.
 */
import { FerryError } from '../model/errors.js';
import type {
  ClientConnection,
  ClientConnectionEvents,
  ClientSocketOptions,
} from '../transport/types.js';
import { connectDealer } from '../transport/zmq-dealer.js';
import { ENDPOINT_FORM } from './connect-options.js';

export interface EndpointEvents extends Pick<
  ClientConnectionEvents,
  'onMessage' | 'onDisconnect' | 'onAuthFailed'
> {
  /** Before the first session, the endpoint in use turned out unreachable. */
  onUnreachable(allUnreachable: boolean): void;
}

/** The endpoints in turn, with the reachability probe of the first connect. @internal */
export class Endpoints {
  private index = 0;
  private readonly unreachable = new Set<number>();
  private probing = true;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly list: readonly string[],
    private readonly connectTimeoutMs: number,
    private readonly events: EndpointEvents,
    private readonly socketOptions: ClientSocketOptions = {},
  ) {}

  /** Every endpoint, for messages. */
  get all(): string {
    return this.list.join(', ');
  }

  /** How many endpoints there are. */
  get count(): number {
    return this.list.length;
  }

  /** Opens a socket to the current endpoint (probing it while no session was ever made). */
  open(): ClientConnection {
    const index = this.index;
    let reached = false;
    const unreachable = (): void => {
      if (reached || !this.probing || index !== this.index) return;
      if (this.unreachable.has(index)) return;
      this.unreachable.add(index);
      this.events.onUnreachable(this.unreachable.size >= this.list.length);
    };
    const transport = connectDealer(
      this.list[index]!,
      {
        onMessage: this.events.onMessage,
        onDisconnect: this.events.onDisconnect,
        onAuthFailed: this.events.onAuthFailed,
        onConnect: () => {
          reached = true;
          if (index === this.index) clearTimeout(this.timer);
        },
        onConnectRetry: unreachable,
      },
      this.socketOptions,
    );
    clearTimeout(this.timer);
    if (this.probing) {
      this.timer = setTimeout(unreachable, this.connectTimeoutMs);
      this.timer.unref();
    }
    return transport;
  }

  /** Moves to the next endpoint (while probing, past those found unreachable). */
  advance(): void {
    for (let i = 0; i < this.list.length; i++) {
      this.index = (this.index + 1) % this.list.length;
      if (!this.probing || !this.unreachable.has(this.index)) return;
    }
  }

  /** A session was made: no more probing, later disconnects are reconnected by ZeroMQ. */
  stopProbing(): void {
    this.probing = false;
    clearTimeout(this.timer);
  }

  /** What connect() rejects with when no endpoint answers. */
  unreachableError(): FerryError {
    return new FerryError(
      'UNREACHABLE',
      `nothing answers at ${this.all}: no Ferry broker runs there, or it cannot ` +
        'be reached. Start one with `npx ferry start` (in a clone: `npm start`), or ' +
        `\`ferry start --bind ${this.list[0]!}\`; endpoints take the form ${ENDPOINT_FORM}.`,
    );
  }
}
