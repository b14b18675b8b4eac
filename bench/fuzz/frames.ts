/**
 * Seeded hostile input for the fuzz harness: a small deterministic generator, and for each
 * target endpoint a mix of pure garbage and near-valid messages (the dialect's header with
 * mutated or random rest), so that both the framing checks and the deeper parsers are hit.
 */

/** mulberry32: a tiny, fast, seeded 32-bit generator (deterministic for a seed). */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** Largest random frame, bytes (small: the flood is about count, not size). */
const MAX_RANDOM_FRAME_BYTES = 64;
const MAX_RANDOM_FRAMES = 6;
/** Share of messages that are pure garbage; the rest start with the dialect's header. */
const GARBAGE_SHARE = 0.5;

const FERRY_COMMANDS = [
  'HELLO',
  'PING',
  'SEND',
  'CONSUME',
  'ACK',
  'NACK',
  'STATS',
  'PUBLISH',
  'SUBSCRIBE',
  'SUBMIT',
  'CALL',
  'WORKER',
  'NOPE',
];
const JSON_SNIPPETS = [
  '{}',
  '{"queue":1}',
  '{"queue":"q","messages":[{"frames":9}]}',
  '{"pattern":"#"}',
  '[',
  '{"prefetch":-1}',
  'null',
  '{"heartbeatMs":1e309}',
];

function randomFrame(r: Rng): Buffer {
  return r.bytes(r.int(MAX_RANDOM_FRAME_BYTES + 1));
}

function randomFrames(r: Rng): Buffer[] {
  return Array.from({ length: 1 + r.int(MAX_RANDOM_FRAMES) }, () => randomFrame(r));
}

/** One near-valid message per dialect: its header, then mutations. */
const HEADERS: Record<string, (r: Rng) => Buffer[]> = {
  ferry: (r) => [
    Buffer.from(r.pick(['FERRY01', 'FERRY02', 'FERRY'])),
    Buffer.from(r.pick(FERRY_COMMANDS)),
    r.bytes(r.int(80)),
    Buffer.from(r.pick(JSON_SNIPPETS)),
    ...(r.int(2) === 0 ? [randomFrame(r)] : []),
  ],
  mdp: (r) => [
    ...(r.int(2) === 0 ? [Buffer.alloc(0)] : []),
    Buffer.from(r.pick(['MDPC01', 'MDPW01', 'MDPC02', 'MDPW02'])),
    r.int(2) === 0
      ? Buffer.from([r.int(8)])
      : Buffer.from(r.pick(['echo', 'mmi.service', 'titanic.request'])),
    ...randomFrames(r),
  ],
  'zmws-client': (r) => [
    ...(r.int(2) === 0 ? [Buffer.alloc(0)] : []),
    Buffer.from(
      r.pick(['JOB: svc', 'JOB-SYNC: svc', 'SERVER-STATUS', 'PARAM-JSON: {', 'PARAM-X: 1']),
    ),
    ...(r.int(2) === 0 ? [randomFrame(r)] : []),
  ],
  'zmws-worker': (r) => [
    Buffer.alloc(0),
    Buffer.from(r.pick(['READY', 'HEARTBEAT', 'REPLY', 'DISCONNECT', 'WORKER'])),
    ...randomFrames(r),
  ],
  'pzq-receive': (r) => [r.bytes(r.int(40)), ...randomFrames(r)],
  'pzq-monitor': (r) => [
    Buffer.from(r.pick(['MONITOR', 'MONITO', 'monitor'])),
    ...(r.int(2) === 0 ? [randomFrame(r)] : []),
  ],
  'pzq-send': (r) => [
    r.bytes(r.int(40)),
    Buffer.from(r.pick(['ACK', 'NACK', ''])),
    ...randomFrames(r),
  ],
  'clone-snapshot': (r) => [
    Buffer.from(r.pick(['ICANHAZ?', 'ICANHAZ', 'KTHXBAI'])),
    randomFrame(r),
  ],
  'clone-collector': (r) => Array.from({ length: 4 + r.int(3) }, () => randomFrame(r)),
};

/** The next hostile message for a target endpoint. */
export function hostileMessage(target: string, r: Rng): Buffer[] {
  const header = HEADERS[target];
  if (!header || r.next() < GARBAGE_SHARE) return randomFrames(r);
  return header(r);
}

const HTTP_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'];
const HTTP_PATHS = [
  '/v1/queues/q/messages',
  '/v1/stats',
  '/v1/queues/%ZZ',
  '/v1/jobs',
  '/v1/services/s/jobs',
  '/metrics',
  '/v1/queues/q/consume',
  '/nope',
  '/v1/queues//messages',
];

/** A hostile HTTP request for the gateway. */
export function hostileHttp(r: Rng): { method: string; path: string; body: string | undefined } {
  const method = r.pick(HTTP_METHODS);
  const body =
    method === 'GET' || method === 'DELETE'
      ? undefined
      : r.int(2) === 0
        ? r.pick(JSON_SNIPPETS)
        : r.bytes(r.int(MAX_RANDOM_FRAME_BYTES)).toString('latin1');
  const path = r.int(4) === 0 ? `/${r.bytes(8).toString('hex')}` : r.pick(HTTP_PATHS);
  return { method, path, body };
}
