/**
 * `ferry queue delete|pause|resume|policy` and `ferry unsubscribe --delete`: a queue's life
 * cycle and its runtime policy from the shell (the QUEUE_* commands of docs/protocol.md).
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { QueuePolicyInfo } from 'ferrymq';
import { QUEUE_POLICY_KEYS, type QueuePolicy, type QueuePolicyChanges } from 'ferrymq/model';
import { clientCommand, subcommand, withClient, type ClientFlags } from './cli-support.js';
import { printJson, printTable } from './output.js';

function policyKey(v: string): keyof QueuePolicy {
  if (!(QUEUE_POLICY_KEYS as string[]).includes(v)) {
    throw new InvalidArgumentError(`unknown policy key ${v} (${QUEUE_POLICY_KEYS.join(', ')})`);
  }
  return v as keyof QueuePolicy;
}

/** commander value parser for a repeatable `--set key=value` (a whole number). */
function setFlag(v: string, previous: QueuePolicyChanges = {}): QueuePolicyChanges {
  const i = v.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError('must be key=value');
  const key = policyKey(v.slice(0, i));
  const raw = v.slice(i + 1);
  if (!/^\d+$/.test(raw)) throw new InvalidArgumentError(`${key} must be a whole number`);
  return { ...previous, [key]: Number(raw) };
}

/** commander value parser for a repeatable `--unset key`. */
function unsetFlag(v: string, previous: (keyof QueuePolicy)[] = []): (keyof QueuePolicy)[] {
  return [...previous, policyKey(v)];
}

function printPolicy(info: QueuePolicyInfo, json: boolean | undefined): void {
  if (json) return printJson(info);
  printTable(
    ['key', 'value', 'set at runtime'],
    QUEUE_POLICY_KEYS.map((k) => [
      k,
      String(info.policy[k]),
      info.overrides[k] !== undefined ? 'yes' : '-',
    ]),
  );
}

interface PolicyFlags extends ClientFlags {
  set?: QueuePolicyChanges;
  unset?: (keyof QueuePolicy)[];
  reset?: boolean;
  json?: boolean;
}

function registerQueueAdmin(program: Command): void {
  const queue = subcommand(program, 'queue', "a queue's life cycle: delete, pause, resume, policy");
  clientCommand(queue, 'delete', 'delete a queue (refused while it holds messages, unless --force)')
    .argument('<queue>')
    .option('--force', 'delete its messages too (they are lost)')
    .action(async (name: string, o: ClientFlags & { force?: boolean }) => {
      await withClient(o, async (c) => {
        const r = await c.deleteQueue(name, { force: o.force === true });
        process.stdout.write(`deleted queue ${r.deleted} (${r.messages} message(s) removed)\n`);
      });
    });
  clientCommand(queue, 'pause', 'stop deliveries (sends are still stored)')
    .argument('<queue>')
    .action(async (name: string, o: ClientFlags) => {
      await withClient(o, async (c) => {
        await c.pauseQueue(name);
        process.stdout.write(`paused ${name}\n`);
      });
    });
  clientCommand(queue, 'resume', 'start deliveries again')
    .argument('<queue>')
    .action(async (name: string, o: ClientFlags) => {
      await withClient(o, async (c) => {
        await c.resumeQueue(name);
        process.stdout.write(`resumed ${name}\n`);
      });
    });
  clientCommand(queue, 'policy', "show or change a queue's policy at runtime (kept in the store)")
    .argument('<queue>')
    .option(
      '--set <key=value>',
      `a runtime value (repeatable; ${QUEUE_POLICY_KEYS.join(', ')})`,
      setFlag,
    )
    .option('--unset <key>', 'drop a runtime value (repeatable)', unsetFlag)
    .option('--reset', 'drop every runtime value (back to the config file)')
    .option('--json', 'the policy as JSON')
    .action(async (name: string, o: PolicyFlags, cmd: Command) => {
      const changes: QueuePolicyChanges = { ...o.set };
      for (const k of o.unset ?? []) changes[k] = null;
      const changing = Object.keys(changes).length > 0;
      if (o.reset && changing) cmd.error('give --reset or --set/--unset, not both');
      await withClient(o, async (c) => {
        const info = o.reset
          ? await c.resetQueuePolicy(name)
          : changing
            ? await c.setQueuePolicy(name, changes)
            : await c.queuePolicy(name);
        printPolicy(info, o.json);
      });
    });
}

function registerUnsubscribe(program: Command): void {
  clientCommand(program, 'unsubscribe', 'delete a durable subscription and its stored messages')
    .argument('<name>', 'the durable subscription')
    .option('--delete', 'required: the subscription and its queue are deleted')
    .action(async (name: string, o: ClientFlags & { delete?: boolean }, cmd: Command) => {
      if (o.delete !== true) {
        cmd.error(
          'a durable subscription outlives its subscribers: add --delete to delete it and its messages',
        );
      }
      await withClient(o, async (c) => {
        await c.deleteSubscription(name);
        process.stdout.write(`deleted durable subscription ${name}\n`);
      });
    });
}

export function registerQueueAdminCommands(program: Command): void {
  registerQueueAdmin(program);
  registerUnsubscribe(program);
}
