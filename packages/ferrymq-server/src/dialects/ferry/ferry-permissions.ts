/**
 * What each FERRY01 command asks permission for: a list of (verb, resource) pairs that the
 * auth model checks before the command runs (docs/security.md "Verbs"). Commands on what the
 * session already holds (ACK, NACK, a worker's COMPLETE, …) need nothing more: the CONSUME,
 * WORKER or SUBSCRIBE that gave it to the session was checked. An argument of the wrong type
 * asks for nothing here; the command itself answers BAD_ARGUMENTS.
 */
import type { Json, Request } from 'ferrymq/protocol';
import type { AuthVerb } from '../../security/auth-model.js';

export type Permission = readonly [verb: AuthVerb, resource: string];

/** The resource of a request over every name (STATS of all queues, JOBS of all services). */
const EVERY_NAME = '**';
/** `admin` resources: reading the broker's numbers, and rolling versions out to nodes. */
const ADMIN_STATS = 'stats';
const ADMIN_ROLLOUTS = 'rollouts';

/** Commands whose permission depends on a stored job's service (looked up first). */
export const JOB_BY_ID: Readonly<Partial<Record<string, AuthVerb>>> = {
  JOB: 'service:call',
  WATCH: 'service:call',
  JOB_CANCEL: 'service:manage',
};

function str(args: Json, key: string): string[] {
  const v = args[key];
  return typeof v === 'string' ? [v] : [];
}

function strs(args: Json, key: string): string[] {
  const v = args[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function each(verb: AuthVerb, names: string[]): Permission[] {
  return names.map((n) => [verb, n] as const);
}

const QUEUE_MANAGE = new Set([
  'PEEK',
  'PURGE',
  'DLQ_LIST',
  'DLQ_REDRIVE',
  'QUEUE_DELETE',
  'QUEUE_PAUSE',
  'QUEUE_RESUME',
  'QUEUE_POLICY',
]);
const ADMIN_STATS_COMMANDS = new Set(['QUEUES', 'SERVICES', 'WORKERS']);

/** The permissions `req` needs (none for commands on what the session holds). */
export function permissionsOf(req: Request): Permission[] {
  const { command, args } = req;
  if (QUEUE_MANAGE.has(command)) return each('queue:manage', str(args, 'queue'));
  if (ADMIN_STATS_COMMANDS.has(command)) return [['admin', ADMIN_STATS]];
  switch (command) {
    case 'SEND':
      return each('queue:send', str(args, 'queue'));
    case 'SEND_MULTICAST':
      return each('queue:send', strs(args, 'queues'));
    case 'CONSUME':
      return each('queue:consume', str(args, 'queue'));
    case 'STATS':
      return args['queue'] === undefined
        ? [['admin', ADMIN_STATS]]
        : each('queue:manage', str(args, 'queue'));
    case 'SUBMIT':
    case 'CALL':
      return each('service:call', str(args, 'service'));
    case 'MULTICAST':
      return each('service:call', strs(args, 'services'));
    case 'JOBS':
      return [
        ['service:manage', typeof args['service'] === 'string' ? args['service'] : EVERY_NAME],
      ];
    case 'WORKER':
      return each('service:serve', strs(args, 'services'));
    case 'PUBLISH':
      return [
        ...each('topic:publish', str(args, 'topic')),
        ...(args['retain'] === true ? each('topic:retain', str(args, 'topic')) : []),
      ];
    case 'SUBSCRIBE':
    case 'RETAINED':
      return each('topic:subscribe', str(args, 'pattern'));
    case 'CONFIRM': {
      const items = Array.isArray(args['items']) ? (args['items'] as Json[]) : [];
      return each(
        'topic:subscribe',
        items.flatMap((it) => (it ? str(it, 'topic') : [])),
      );
    }
    case 'ROLLOUT':
      return [['admin', ADMIN_ROLLOUTS], ...each('topic:publish', str(args, 'topic'))];
    case 'TOPIC_STATUS':
      return [['admin', ADMIN_ROLLOUTS]];
    default:
      return [];
  }
}
