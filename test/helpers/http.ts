/** Test helpers for the HTTP gateway: JSON requests, a Prometheus text parser, SSE reading. */
import type { WorkerHandle } from 'ferrymq-server/internal/core/job-types.js';
import type { RunningServer } from 'ferrymq-server';

/** Parsed JSON of a reply, loosely typed for assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Loose = any;

export interface JsonReply {
  status: number;
  body: Loose;
  text: string;
  headers: Headers;
}

/** One request; a JSON `body` is sent as application/json unless `raw` is given. */
export async function req(
  base: string,
  method: string,
  path: string,
  options: { body?: unknown; raw?: string | Buffer; contentType?: string } = {},
): Promise<JsonReply> {
  const headers: Record<string, string> = {};
  let body: string | Buffer | undefined;
  if (options.raw !== undefined) {
    body = options.raw;
    headers['content-type'] = options.contentType ?? 'application/json';
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format; throws on a line that is not valid. */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  // Values as Prometheus reads them (Go's ParseFloat): NaN and Inf in any case (prom-client
  // writes an empty summary's mean as `Nan`).
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (-?[0-9.e+-]+|nan|[+-]?inf)$/i;
  for (const l of text.split('\n')) {
    if (l === '' || l.startsWith('# HELP ') || l.startsWith('# TYPE ')) continue;
    const m = line.exec(l);
    if (!m) throw new Error(`not a Prometheus sample line: ${l}`);
    const labels: Record<string, string> = {};
    for (const p of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[p[1]!] = p[2]!;
    }
    const v = m[4]!.toLowerCase();
    const value =
      v === 'nan' ? NaN : v.endsWith('inf') ? (v.startsWith('-') ? -1 : 1) * Infinity : Number(v);
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

export function sampleValue(
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value;
}

/** Reads server-sent events from a stream until `until` says stop (or the stream ends). */
export async function readEvents(
  url: string,
  until: (events: { event: string; data: Loose }[]) => boolean,
  timeoutMs = 10_000,
): Promise<{ event: string; data: Loose }[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const events: { event: string; data: Loose }[] = [];
  try {
    const res = await fetch(url, { signal: ac.signal });
    if (res.status !== 200) throw new Error(`SSE status ${res.status}: ${await res.text()}`);
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return events;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = 'message';
        let data = '';
        for (const l of block.split('\n')) {
          if (l.startsWith('event: ')) event = l.slice(7);
          else if (l.startsWith('data: ')) data += l.slice(6);
        }
        if (data !== '') events.push({ event, data: JSON.parse(data) });
        if (until(events)) {
          ac.abort();
          return events;
        }
      }
    }
  } catch (err) {
    if (ac.signal.aborted && until(events)) return events;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A worker in the broker process for `service`: `handle(params)` gives the result JSON, or
 * throws to fail the job. Jobs it should hold (for cancel tests) resolve when `release()`d.
 */
export function startWorker(
  server: RunningServer,
  service: string,
  handle: (params: unknown) => unknown,
): WorkerHandle {
  const w: WorkerHandle = server.jobs.registerWorker(
    {
      assign(job) {
        Promise.resolve()
          .then(() => handle(JSON.parse(job.params[0]!.toString())))
          .then(
            (r) => w.complete(job.id, [Buffer.from(JSON.stringify(r))]),
            (e: unknown) =>
              w.fail(job.id, { code: 'WORKER_ERROR', message: String(e) }, { retry: false }),
          )
          .catch(() => {});
      },
      cancel() {},
    },
    { services: [service], concurrency: 4, protocol: 'test' },
  );
  return w;
}
