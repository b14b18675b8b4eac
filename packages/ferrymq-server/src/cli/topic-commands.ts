/** `ferry publish|subscribe|retained|config`: topics, retained state and rollouts from the shell. */
import type { TopicMessage } from 'ferrymq';
import {
  CLIENT_FLAGS,
  fail,
  intFlag,
  parse,
  printable,
  printTable,
  withClient,
} from './cli-support.js';

function parseHeaders(list: unknown): Record<string, string> | undefined {
  if (!Array.isArray(list) || list.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const h of list as string[]) {
    const i = h.indexOf('=');
    if (i <= 0) fail(`CONFIG_INVALID: --header must be key=value, got ${JSON.stringify(h)}`);
    out[h.slice(0, i)] = h.slice(i + 1);
  }
  return out;
}

function describe(m: TopicMessage, json: boolean): string {
  if (json) {
    return JSON.stringify({
      topic: m.topic,
      seq: m.seq,
      body: printable(m.body),
      ...(m.retained ? { retained: true } : {}),
      ...(m.deleted ? { deleted: true } : {}),
      ...(m.snapshot ? { snapshot: true } : {}),
      ...(Object.keys(m.headers).length > 0 ? { headers: m.headers } : {}),
    });
  }
  return `${m.seq}\t${m.topic}\t${m.deleted ? '(deleted)' : printable(m.body)}`;
}

export async function cmdPublish(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    ...CLIENT_FLAGS,
    retain: { type: 'boolean' },
    ttl: { type: 'string' },
    header: { type: 'string', multiple: true },
  });
  const [topic, ...body] = positionals;
  if (!topic || body.length === 0) {
    fail('usage: ferry publish <topic> <body…> [--retain] [--ttl ms] [--header k=v]');
  }
  const ttlMs = intFlag(values['ttl'], 'ttl');
  const headers = parseHeaders(values['header']);
  await withClient(values, async (c) => {
    const seq = await c.publish(topic, body.length === 1 ? body[0]! : body, {
      ...(values['retain'] ? { retain: true } : {}),
      ...(ttlMs !== undefined ? { ttlMs } : {}),
      ...(headers ? { headers } : {}),
    });
    process.stdout.write(`${seq}\n`);
  });
}

export async function cmdSubscribe(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    ...CLIENT_FLAGS,
    durable: { type: 'string' },
    group: { type: 'string' },
    node: { type: 'string' },
    snapshot: { type: 'boolean' },
    count: { type: 'string' },
    json: { type: 'boolean' },
  });
  const pattern = positionals[0];
  if (!pattern || positionals.length > 1) {
    fail(
      'usage: ferry subscribe <pattern> [--snapshot] [--durable name] [--group name] [--node name] [--count n] [--json]',
    );
  }
  const count = intFlag(values['count'], 'count');
  const json = values['json'] === true;
  await withClient(values, async (c) => {
    const sub = c.subscribe(pattern, {
      ...(typeof values['durable'] === 'string' ? { durable: values['durable'] } : {}),
      ...(typeof values['group'] === 'string' ? { group: values['group'] } : {}),
      ...(typeof values['node'] === 'string' ? { node: values['node'] } : {}),
      ...(values['snapshot'] ? { snapshot: true } : {}),
    });
    await sub.ready;
    let n = 0;
    if (count === 0) return;
    for await (const m of sub) {
      process.stdout.write(`${describe(m, json)}\n`);
      await m.ack();
      if (count !== undefined && ++n >= count) break;
    }
  });
}

export async function cmdRetained(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { ...CLIENT_FLAGS, json: { type: 'boolean' } });
  const pattern = positionals[0] ?? '**';
  if (positionals.length > 1) fail('usage: ferry retained [pattern] [--json]');
  await withClient(values, async (c) => {
    const r = await c.retained(pattern);
    if (values['json']) {
      process.stdout.write(
        `${JSON.stringify({ seq: r.seq, messages: r.messages.map((m) => JSON.parse(describe(m, true)) as unknown) })}\n`,
      );
      return;
    }
    for (const m of r.messages) process.stdout.write(`${describe(m, false)}\n`);
    process.stderr.write(`${r.messages.length} retained value(s) as of seq ${r.seq}\n`);
  });
}

/** `ferry config set|get|status`: configuration distribution on retained topics. */
export async function cmdConfig(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'set':
      return configSet(rest);
    case 'get':
      return cmdRetained(rest);
    case 'status':
      return configStatus(rest);
    default:
      fail(
        'usage: ferry config set <topic> <value> [--ttl ms] [--nodes a,b,c] [--wait ms]\n' +
          '       ferry config get [pattern] [--json]\n' +
          '       ferry config status <pattern> [--json]',
      );
  }
}

async function configSet(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    ...CLIENT_FLAGS,
    ttl: { type: 'string' },
    nodes: { type: 'string' },
    wait: { type: 'string' },
  });
  const [topic, value, ...extra] = positionals;
  if (!topic || value === undefined || extra.length > 0) {
    fail('usage: ferry config set <topic> <value> [--ttl ms] [--nodes a,b,c] [--wait ms]');
  }
  const ttlMs = intFlag(values['ttl'], 'ttl');
  const waitMs = intFlag(values['wait'], 'wait');
  const nodes =
    typeof values['nodes'] === 'string'
      ? values['nodes'].split(',').filter((n) => n !== '')
      : undefined;
  await withClient(values, async (c) => {
    if (nodes === undefined && waitMs === undefined) {
      const seq = await c.publish(topic, value, {
        retain: true,
        ...(ttlMs !== undefined ? { ttlMs } : {}),
      });
      process.stdout.write(`${topic} = ${value} (seq ${seq})\n`);
      return;
    }
    const out = await c.rollout(topic, value, {
      ...(nodes ? { nodes } : {}),
      ...(waitMs !== undefined ? { timeoutMs: waitMs } : {}),
      ...(ttlMs !== undefined ? { ttlMs } : {}),
    });
    process.stdout.write(
      `${topic} = ${value} (seq ${out.seq}); confirmed: ${out.confirmed.join(', ') || '-'}; ` +
        `pending: ${out.pending.join(', ') || '-'}\n`,
    );
    if (!out.complete) fail(`TIMEOUT: not confirmed by ${out.pending.join(', ')}`, 1);
  });
}

async function configStatus(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { ...CLIENT_FLAGS, json: { type: 'boolean' } });
  const pattern = positionals[0];
  if (!pattern || positionals.length > 1) fail('usage: ferry config status <pattern> [--json]');
  await withClient(values, async (c) => {
    const topics = await c.topicStatus(pattern);
    if (values['json']) {
      process.stdout.write(`${JSON.stringify(topics)}\n`);
      return;
    }
    const rows: string[][] = [];
    for (const t of topics) {
      if (t.nodes.length === 0) rows.push([t.topic, String(t.seq ?? '-'), '-', '-', '-']);
      for (const n of t.nodes) {
        rows.push([
          t.topic,
          String(t.seq ?? '-'),
          n.node,
          String(n.seq),
          n.current ? 'current' : 'behind',
        ]);
      }
    }
    printTable(['TOPIC', 'VERSION', 'NODE', 'HOLDS', 'STATE'], rows);
  });
}
