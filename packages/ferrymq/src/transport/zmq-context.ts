/**
 * The process's ZeroMQ context. libzmq allows 1,023 sockets per context by default, whatever
 * the process's open-file limit: a process with many clients hit EMFILE at about 340 of them.
 * The limit is raised to the open-file limit (up to libzmq's own ceiling); it takes effect only
 * if raised before the context's first socket, so the transport does it when it loads.
 */
import fs from 'node:fs';
import * as zmq from 'zeromq';

/** Where Linux tells a process its limits ("Max open files  <soft>  <hard>  files"). */
const PROC_LIMITS = '/proc/self/limits';
const OPEN_FILES_LINE = /^Max open files\s+(\d+|unlimited)\s/m;

/** The soft limit on open files, when the system tells it (Linux); undefined otherwise. */
export function openFileLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = fs.readFileSync(PROC_LIMITS, 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = OPEN_FILES_LINE.exec(text);
  if (!m) return undefined;
  return m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
}

/** Raises the context's socket limit to the open-file limit; returns the limit in force. */
export function raiseSocketLimit(): number {
  const files = openFileLimit();
  if (files === undefined) return zmq.context.maxSockets;
  const wanted = Math.min(files, zmq.context.maxSocketsLimit);
  if (wanted > zmq.context.maxSockets) zmq.context.maxSockets = wanted;
  return zmq.context.maxSockets;
}
