/**
 * A ZeroMQ proxy between a client and a broker that loses the broker's reply to chosen
 * requests, as a broker killed between storing a request and answering it would: the client
 * never hears that it was done and sends it again after reconnecting. Or it loses the request
 * itself, as a broker killed before reading it would. ROUTER in front, one DEALER per client
 * behind (each reconnects by itself to a broker restarted on its endpoint). Only loopback
 * endpoints.
 */
import * as zmq from 'zeromq';

export interface ReplyDropper {
  /** Where clients connect. */
  endpoint: string;
  /** Replies lost so far, by the command they answered. */
  readonly dropped: Map<string, number>;
  close(): void;
}

/**
 * Proxies to `target`; loses the reply (OK or ERROR) to the first request of each command in
 * `commands` — with `lose: 'request'`, that request itself — forwarding everything else.
 */
export async function replyDropper(
  target: string,
  commands: string[],
  options: { lose?: 'reply' | 'request' } = {},
): Promise<ReplyDropper> {
  const loseRequests = options.lose === 'request';
  const front = new zmq.Router({ linger: 0 });
  await front.bind('tcp://127.0.0.1:*');
  const backs = new Map<string, zmq.Dealer>();
  const toDrop = new Map<string, string>(); // request id (latin1) → command
  const armed = new Set(commands);
  const dropped = new Map<string, number>();

  const backFor = (identity: Buffer): zmq.Dealer => {
    const key = identity.toString('latin1');
    let back = backs.get(key);
    if (back) return back;
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(target);
    backs.set(key, dealer);
    back = dealer;
    void (async () => {
      for await (const frames of dealer) {
        const requestId = frames[2]?.toString('latin1');
        const kind = frames[1]?.toString();
        const command = requestId === undefined ? undefined : toDrop.get(requestId);
        if (command !== undefined && (kind === 'OK' || kind === 'ERROR')) {
          toDrop.delete(requestId!);
          dropped.set(command, (dropped.get(command) ?? 0) + 1);
          continue;
        }
        await front.send([identity, ...frames]);
      }
    })().catch(() => {});
    return back;
  };

  void (async () => {
    for await (const [identity, ...frames] of front) {
      const command = frames[1]?.toString();
      if (command !== undefined && armed.has(command) && frames[2] !== undefined) {
        armed.delete(command);
        if (loseRequests) {
          dropped.set(command, (dropped.get(command) ?? 0) + 1);
          continue;
        }
        toDrop.set(frames[2].toString('latin1'), command);
      }
      await backFor(identity!).send(frames);
    }
  })().catch(() => {});

  return {
    endpoint: front.lastEndpoint!,
    dropped,
    close: () => {
      front.close();
      for (const b of backs.values()) b.close();
    },
  };
}
