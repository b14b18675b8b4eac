/**
 * ZMWS 1.0 worker frames (research/protocols.md §2.3, §2.5). Pure: no sockets, no core.
 *
 * Worker → server (after the ROUTER id): `<service>, READY`; `HEARTBEAT`;
 * `[PARAM-JSON: <json>], <service>, COMPLETE: <jobid> | FAIL: <jobid> | CONT: <jobid>`.
 * Server → worker: `<client id>, "", <param frame>, JOB: <jobid>`; `HEARTBEAT`.
 */
import { decodeParam, type ZmwsParam } from './zmws-commands.js';

const ZMWS_READY = 'READY';
const ZMWS_HEARTBEAT = 'HEARTBEAT';
const RESULT_PATTERN = /^(COMPLETE|FAIL|CONT): (\S+)$/;
const EMPTY = Buffer.alloc(0);

export type ZmwsWorkerMessage =
  | { kind: 'ready'; service: string }
  | { kind: 'heartbeat' }
  | {
      kind: 'result';
      outcome: 'COMPLETE' | 'FAIL' | 'CONT';
      jobId: string;
      service: string;
      param: ZmwsParam | undefined;
    }
  | { kind: 'invalid'; reason: string };

export function decodeWorkerMessage(frames: Buffer[]): ZmwsWorkerMessage {
  if (frames.length === 1) {
    if (frames[0]!.toString('latin1') === ZMWS_HEARTBEAT) return { kind: 'heartbeat' };
    return { kind: 'invalid', reason: 'a one-frame message must be HEARTBEAT' };
  }
  if (frames.length !== 2 && frames.length !== 3) {
    return { kind: 'invalid', reason: `${frames.length} frames: expected 1, 2 or 3` };
  }
  const command = frames.at(-1)!.toString('latin1');
  const service = frames.at(-2)!.toString('latin1');
  if (service.length === 0) return { kind: 'invalid', reason: 'no service named' };
  if (command === ZMWS_READY) {
    if (frames.length !== 2) return { kind: 'invalid', reason: 'READY takes only the service' };
    return { kind: 'ready', service };
  }
  const m = RESULT_PATTERN.exec(command);
  if (!m) return { kind: 'invalid', reason: 'unknown worker command' };
  let param: ZmwsParam | undefined;
  if (frames.length === 3) {
    param = decodeParam(frames[0]!);
    if (!param) return { kind: 'invalid', reason: 'the first of three frames is no PARAM frame' };
  }
  return {
    kind: 'result',
    outcome: m[1] as 'COMPLETE' | 'FAIL' | 'CONT',
    jobId: m[2]!,
    service,
    param,
  };
}

/** A job for a worker: who asked, the parameter frame, the job id. */
export function encodeWorkerJob(clientId: Buffer, param: Buffer, jobId: string): Buffer[] {
  return [clientId, EMPTY, param, Buffer.from(`JOB: ${jobId}`)];
}

export function encodeWorkerHeartbeat(): Buffer[] {
  return [Buffer.from(ZMWS_HEARTBEAT)];
}
