/**
 * ZMWS 1.0 text commands (research/protocols.md §2.3), parsed and formatted. Pure: no
 * sockets, no core. Shared by the ZeroMQ dialect and the HTTP gateway's ZMWS routes.
 *
 * - A client request's last frame is `[JOB: ][SYNC-]<service>`; frames before it may carry
 *   parameters as `<KEY>: <value>`, where a key containing `JSON` (`PARAM-JSON`, the
 *   README's `JSON-PARAM`) holds JSON.
 * - `SERVER-JOBS`, `SERVER-ACTIVE`, `SERVER-HIST` and `SERVER-WORKERS` are answered by the
 *   server itself.
 * - Replies: `JOB: <jobid> <service>` (accepted), `FAIL: <service>` (refused), and for
 *   `SYNC-` requests `COMPLETE: <service> [<jobid>]` / `FAIL: <service> [<jobid>]` /
 *   `CONT: <service> [<jobid>]` followed by a `PARAM-JSON: <json>` frame.
 * - A job in a `SERVER-*` listing is an object with ZMWS's field names (times in seconds).
 */
import type { JobInfo } from 'ferrymq/model';

const ZMWS_JOB_PREFIX = 'JOB: ';
export const ZMWS_SYNC_PREFIX = 'SYNC-';
export const ZMWS_PARAM_JSON = 'PARAM-JSON';
export const ZMWS_SERVER_QUERIES = [
  'SERVER-JOBS',
  'SERVER-ACTIVE',
  'SERVER-HIST',
  'SERVER-WORKERS',
] as const;
export type ZmwsServerQuery = (typeof ZMWS_SERVER_QUERIES)[number];
/** Longest service name taken from a request (Ferry's own limit is checked by the job server). */
const ZMWS_SERVICE_MAX_LENGTH = 255;

/** A parameter frame: `<key>: <value>`. */
export interface ZmwsParam {
  key: string;
  value: Buffer;
  /** The key names JSON (PARAM-JSON, JSON-PARAM, …). */
  json: boolean;
}

export type ZmwsRequest =
  | { kind: 'job'; service: string; sync: boolean; param: ZmwsParam | undefined }
  | { kind: 'server'; query: ZmwsServerQuery }
  | { kind: 'invalid'; reason: string };

const SEPARATOR = ': ';
const MS_PER_S = 1_000;

/** Splits a `<KEY>: <value>` frame; undefined when it is not one (no `PARAM` in the key). */
export function decodeParam(frame: Buffer): ZmwsParam | undefined {
  const head = frame.subarray(0, 64).toString('latin1');
  const at = head.indexOf(SEPARATOR);
  if (at <= 0) return undefined;
  const key = head.slice(0, at);
  if (!key.toUpperCase().includes('PARAM')) return undefined;
  return {
    key,
    value: frame.subarray(at + SEPARATOR.length),
    json: key.toUpperCase().includes('JSON'),
  };
}

/**
 * Parses a client request: the frames after the ROUTER id and the REQ delimiter. The last
 * frame is the command; the first frame before it that is a parameter frame is the parameter.
 */
export function parseClientRequest(frames: Buffer[]): ZmwsRequest {
  const last = frames.at(-1);
  if (last === undefined) return { kind: 'invalid', reason: 'empty request' };
  if (last.length > ZMWS_JOB_PREFIX.length + ZMWS_SYNC_PREFIX.length + ZMWS_SERVICE_MAX_LENGTH) {
    return { kind: 'invalid', reason: 'the command frame is too long for a service name' };
  }
  let name = last.toString('latin1');
  if (name.startsWith(ZMWS_JOB_PREFIX)) name = name.slice(ZMWS_JOB_PREFIX.length);
  let sync = false;
  if (name.startsWith(ZMWS_SYNC_PREFIX)) {
    sync = true;
    name = name.slice(ZMWS_SYNC_PREFIX.length);
  }
  if ((ZMWS_SERVER_QUERIES as readonly string[]).includes(name)) {
    return { kind: 'server', query: name as ZmwsServerQuery };
  }
  if (name.length === 0) return { kind: 'invalid', reason: 'no service named' };
  let param: ZmwsParam | undefined;
  for (const f of frames.slice(0, -1)) {
    param = decodeParam(f);
    if (param) break;
  }
  return { kind: 'job', service: name, sync, param };
}

/** True when a frame holds valid JSON text. */
function isJsonText(b: Buffer): boolean {
  if (b.length === 0) return false;
  try {
    JSON.parse(b.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

/**
 * Ferry frames as one JSON text: one JSON frame as it is; one other frame as a JSON string;
 * no frame as null; several as a JSON array of their texts.
 */
export function framesToJson(frames: Buffer[]): string {
  if (frames.length === 0) return 'null';
  if (frames.length === 1) {
    const f = frames[0]!;
    return isJsonText(f) ? f.toString('utf8') : JSON.stringify(f.toString('utf8'));
  }
  return JSON.stringify(frames.map((f) => f.toString('utf8')));
}

/** A `PARAM-JSON: <json>` frame holding Ferry frames (see framesToJson). */
export function paramJsonFrame(frames: Buffer[]): Buffer {
  return Buffer.from(`${ZMWS_PARAM_JSON}${SEPARATOR}${framesToJson(frames)}`);
}

/** `<key>: <value>` as one frame. */
export function encodeParam(key: string, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${key}${SEPARATOR}`), value]);
}

export function formatAccepted(jobId: string, service: string): string {
  return `JOB: ${jobId} ${service}`;
}

export function formatRefused(service: string): string {
  return `FAIL: ${service}`;
}

export type ZmwsOutcome = 'COMPLETE' | 'FAIL' | 'CONT';

export function formatSyncStatus(outcome: ZmwsOutcome, service: string, jobId: string): string {
  return `${outcome}: ${service} [${jobId}]`;
}

/** A failure reason as JSON text: a worker's own JSON answer as it is, other text as a string. */
export function failureJsonText(why: string): string {
  return isJsonText(Buffer.from(why)) ? why : JSON.stringify(why);
}

/** A job in a SERVER-JOBS, SERVER-ACTIVE or SERVER-HIST listing, as ZMWS 1.0 named its fields. */
export interface ZmwsJobEntry {
  jobid: string;
  service: string;
  /** Times in seconds since the epoch. */
  reqtime: number;
  startedat: number | null;
  completedat: number | null;
  status: string;
}

/** A Ferry job as a listing entry. */
export function zmwsJobEntry(j: JobInfo): ZmwsJobEntry {
  return {
    jobid: j.id,
    service: j.service,
    reqtime: j.createdAt / MS_PER_S,
    startedat: j.startedAt === null ? null : j.startedAt / MS_PER_S,
    completedat: j.finishedAt === null ? null : j.finishedAt / MS_PER_S,
    status: j.status,
  };
}
