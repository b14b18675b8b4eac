/** `ferry publish|subscribe|retained|config`: topics, retained state and rollouts from the shell. */
import type { Command } from 'commander';
import type { TopicMessage } from 'ferrymq';
import {
  clientCommand,
  EXIT_FAILURE,
  headerFlag,
  printable,
  readBodies,
  subcommand,
  wholeNumber,
  withClient,
  type ClientFlags,
} from './cli-support.js';
import { printJson, printListing } from './output.js';

function describe(m: TopicMessage, json: boolean): string {
  if (json) return JSON.stringify(messageJson(m));
  return `${m.seq}\t${m.topic}\t${m.deleted ? '(deleted)' : printable(m.body)}`;
}

function messageJson(m: TopicMessage): object {
  return {
    topic: m.topic,
    seq: m.seq,
    body: printable(m.body),
    ...(m.retained ? { retained: true } : {}),
    ...(m.deleted ? { deleted: true } : {}),
    ...(m.snapshot ? { snapshot: true } : {}),
    ...(Object.keys(m.headers).length > 0 ? { headers: m.headers } : {}),
  };
}

interface PublishFlags extends ClientFlags {
  retain?: boolean;
  ttl?: number;
  header?: Record<string, string>;
}

interface SubscribeFlags extends ClientFlags {
  durable?: string;
  group?: string;
  node?: string;
  snapshot?: boolean;
  count?: number;
  json?: boolean;
}

function registerPublishAndSubscribe(program: Command): void {
  clientCommand(program, 'publish', 'publish on a topic; print its sequence number')
    .argument('<topic>')
    .argument('<body...>', "frames: text, '-' for stdin, '@path' for a file")
    .option('--retain', "keep it as the topic's retained value")
    .option('--ttl <ms>', 'retained value expires after this', wholeNumber)
    .option('--header <k=v>', 'a header (repeatable)', headerFlag)
    .action(async (topic: string, body: string[], o: PublishFlags) => {
      await withClient(o, async (c) => {
        const seq = await c.publish(topic, readBodies(body), {
          ...(o.retain ? { retain: true } : {}),
          ...(o.ttl !== undefined ? { ttlMs: o.ttl } : {}),
          ...(o.header ? { headers: o.header } : {}),
        });
        process.stdout.write(`${seq}\n`);
      });
    });

  clientCommand(program, 'subscribe', 'print messages on topics matching a pattern')
    .argument('<pattern>', 'e.g. app/** or app/+/db')
    .option('--snapshot', 'first the retained values')
    .option('--durable <name>', 'a durable subscription (kept while away)')
    .option('--group <name>', 'share the messages with the group')
    .option('--node <name>', 'confirm retained versions as this node')
    .option('--count <n>', 'stop after n messages', wholeNumber)
    .option('--json', 'one JSON object per message (JSON lines)')
    .action(async (pattern: string, o: SubscribeFlags) => {
      await withClient(o, async (c) => {
        const sub = c.subscribe(pattern, {
          ...(o.durable !== undefined ? { durable: o.durable } : {}),
          ...(o.group !== undefined ? { group: o.group } : {}),
          ...(o.node !== undefined ? { node: o.node } : {}),
          ...(o.snapshot ? { snapshot: true } : {}),
        });
        await sub.ready;
        let n = 0;
        if (o.count === 0) return;
        for await (const m of sub) {
          process.stdout.write(`${describe(m, o.json === true)}\n`);
          await m.ack();
          if (o.count !== undefined && ++n >= o.count) break;
        }
      });
    });
}

async function showRetained(pattern: string, o: ClientFlags & { json?: boolean }): Promise<void> {
  await withClient(o, async (c) => {
    const r = await c.retained(pattern);
    if (o.json) return printJson({ seq: r.seq, messages: r.messages.map(messageJson) });
    for (const m of r.messages) process.stdout.write(`${describe(m, false)}\n`);
    process.stderr.write(`${r.messages.length} retained value(s) as of seq ${r.seq}\n`);
  });
}

interface ConfigSetFlags extends ClientFlags {
  ttl?: number;
  nodes?: string;
  wait?: number;
}

/** `ferry config set|get|status`: configuration distribution on retained topics. */
function registerConfig(program: Command): void {
  clientCommand(program, 'retained', 'the retained values of topics matching a pattern')
    .argument('[pattern]', 'default **', '**')
    .option('--json', 'a JSON object {seq, messages}')
    .action(showRetained);
  const config = subcommand(program, 'config', 'configuration on retained topics, with rollouts');
  clientCommand(config, 'set', 'set a value; with --nodes/--wait wait for confirmations')
    .argument('<topic>')
    .argument('<value>')
    .option('--ttl <ms>', 'the value expires after this', wholeNumber)
    .option('--nodes <a,b,c>', 'nodes that must confirm')
    .option('--wait <ms>', 'how long to wait for confirmations', wholeNumber)
    .action(async (topic: string, value: string, o: ConfigSetFlags) => {
      const nodes = o.nodes?.split(',').filter((n) => n !== '');
      await withClient(o, async (c) => {
        if (nodes === undefined && o.wait === undefined) {
          const seq = await c.publish(topic, value, {
            retain: true,
            ...(o.ttl !== undefined ? { ttlMs: o.ttl } : {}),
          });
          process.stdout.write(`${topic} = ${value} (seq ${seq})\n`);
          return;
        }
        const out = await c.rollout(topic, value, {
          ...(nodes ? { nodes } : {}),
          ...(o.wait !== undefined ? { timeoutMs: o.wait } : {}),
          ...(o.ttl !== undefined ? { ttlMs: o.ttl } : {}),
        });
        process.stdout.write(
          `${topic} = ${value} (seq ${out.seq}); confirmed: ${out.confirmed.join(', ') || '-'}; ` +
            `pending: ${out.pending.join(', ') || '-'}\n`,
        );
        if (!out.complete) {
          process.stderr.write(`ferry: TIMEOUT: not confirmed by ${out.pending.join(', ')}\n`);
          process.exitCode = EXIT_FAILURE;
        }
      });
    });
  clientCommand(config, 'get', 'the retained values (as ferry retained)')
    .argument('[pattern]', 'default **', '**')
    .option('--json', 'a JSON object {seq, messages}')
    .action(showRetained);
  clientCommand(config, 'status', 'which node holds which version')
    .argument('<pattern>')
    .option('--json', 'a JSON array of topics')
    .action(async (pattern: string, o: ClientFlags & { json?: boolean }) => {
      await withClient(o, async (c) => {
        const topics = await c.topicStatus(pattern);
        if (o.json) return printJson(topics);
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
        printListing(['TOPIC', 'VERSION', 'NODE', 'HOLDS', 'STATE'], rows, 'no topics');
      });
    });
}

export function registerTopicCommands(program: Command): void {
  registerPublishAndSubscribe(program);
  registerConfig(program);
}
