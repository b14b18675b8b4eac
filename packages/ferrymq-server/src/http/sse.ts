/**
 * Server-sent events: a job's updates (status, progress, partials, final) and live stats
 * (topic subscriptions are in topic-routes.ts).
 * Each stream is `text/event-stream` with `event:` names and JSON `data:`; a comment line
 * every SSE_KEEPALIVE_MS keeps proxies from closing an idle stream.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { JobApi } from '../core/job-types.js';
import type { StatsSource } from '../core/stats.js';
import { FerryError, type FerryStats } from 'ferrymq/model';
import { jobEventToJson } from './job-json.js';
import { errorResponses, jobIdParams } from './schemas.js';

const SSE_KEEPALIVE_MS = 15_000;
const DEFAULT_STATS_INTERVAL_MS = 1_000;
const MIN_STATS_INTERVAL_MS = 100;
const MAX_STATS_INTERVAL_MS = 60_000;

/** One open event stream. */
export class SseStream {
  private closed = false;
  private readonly keepalive: NodeJS.Timeout;
  private readonly onClose: (() => void)[] = [];

  constructor(
    private readonly res: ServerResponse,
    private readonly owner: SseStreams,
  ) {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(': ferry\n\n');
    this.keepalive = setInterval(() => res.write(': keepalive\n\n'), SSE_KEEPALIVE_MS);
    this.keepalive.unref();
    res.on('close', () => this.close());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Writes one event; `onFlushed` runs once the socket took it (not if the stream ends first). */
  send(event: string, data: unknown, onFlushed?: () => void): void {
    if (this.closed) return;
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    if (onFlushed === undefined) this.res.write(text);
    else this.res.write(text, (err) => (err ? undefined : onFlushed()));
  }

  whenClosed(fn: () => void): void {
    if (this.closed) fn();
    else this.onClose.push(fn);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    this.owner.forget(this);
    for (const fn of this.onClose.splice(0)) fn();
    this.res.end();
  }
}

/** Every open stream, so the gateway can end them when it closes. */
export class SseStreams {
  private readonly open = new Set<SseStream>();

  /** `onEnd` is told when a stream's request is over (Fastify skips onResponse once hijacked). */
  constructor(private readonly onEnd: (req: FastifyRequest) => void = () => {}) {}

  start(req: FastifyRequest, reply: FastifyReply): SseStream {
    reply.hijack();
    const s = new SseStream(reply.raw, this);
    this.open.add(s);
    s.whenClosed(() => this.onEnd(req));
    return s;
  }

  forget(s: SseStream): void {
    this.open.delete(s);
  }

  get count(): number {
    return this.open.size;
  }

  closeAll(): void {
    for (const s of [...this.open]) s.close();
  }
}

export interface EventRoutesOptions {
  jobs: JobApi;
  stats: StatsSource;
  streams: SseStreams;
  /** What of a snapshot the request's user may see (auth-guard.ts); all of it without. */
  statsView?: ((req: FastifyRequest, s: FerryStats) => FerryStats) | undefined;
}

const sseResponse = {
  200: {
    description: 'text/event-stream',
    type: 'string',
  },
  ...errorResponses,
} as const;

export function registerEventRoutes(app: FastifyInstance, o: EventRoutesOptions): void {
  const tags = ['events'];

  app.get<{ Params: { id: string } }>(
    '/v1/jobs/:id/events',
    {
      schema: {
        tags,
        summary: "A job's events: status, progress, partial, then final (stream ends)",
        params: jobIdParams,
        produces: ['text/event-stream'],
        response: sseResponse,
      },
    },
    async (req, reply) => {
      const job = await o.jobs.get(req.params.id);
      if (!job) throw new FerryError('JOB_NOT_FOUND', `no job ${req.params.id}`);
      const stream = o.streams.start(req, reply);
      const stop = await o.jobs.watch(req.params.id, (e) => {
        stream.send(e.type, jobEventToJson(e));
        // The stream ends after the final event (once watch() has returned its stop).
        if (e.type === 'final') setImmediate(() => stream.close());
      });
      stream.whenClosed(stop);
    },
  );

  app.get<{ Querystring: { intervalMs: number } }>(
    '/v1/events/stats',
    {
      schema: {
        tags,
        summary: 'Live stats (the /v1/stats snapshot) every intervalMs',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            intervalMs: {
              type: 'integer',
              minimum: MIN_STATS_INTERVAL_MS,
              maximum: MAX_STATS_INTERVAL_MS,
              default: DEFAULT_STATS_INTERVAL_MS,
            },
          },
        },
        produces: ['text/event-stream'],
        response: sseResponse,
      },
    },
    (req, reply) => {
      const stream = o.streams.start(req, reply);
      let busy = false;
      const tick = (): void => {
        if (busy || stream.isClosed) return;
        busy = true;
        o.stats.snapshot().then(
          (s) => {
            busy = false;
            stream.send('stats', { at: Date.now(), ...(o.statsView?.(req, s) ?? s) });
          },
          (err: unknown) => {
            busy = false;
            stream.send('error', { code: 'INTERNAL', message: String(err) });
          },
        );
      };
      tick();
      const timer = setInterval(tick, req.query.intervalMs);
      stream.whenClosed(() => clearInterval(timer));
    },
  );
}
