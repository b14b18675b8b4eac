/**
 * One flood, in a worker thread (fuzz.ts starts it): the flooding peers get their own event
 * loop, so the healthy client's round trips, measured on the main thread, are not delayed by
 * the flooder's send loop in the measuring process itself.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as zmq from 'zeromq';
import { hostileMessage, Rng } from './frames.js';

export interface FloodJob {
  target: string;
  endpoint: string;
  seed: number;
  frames: number;
  /** Messages per peer before it reconnects as a new one (0: one peer throughout). */
  peerFrames: number;
}

export interface FloodResult {
  sent: number;
  replies: number;
}

const FLOOD_SEND_HWM = 1_000;

async function flood(job: FloodJob): Promise<FloodResult> {
  const rng = new Rng(job.seed);
  let replies = 0;
  const open = (): zmq.Dealer | zmq.Publisher => {
    const s =
      job.target === 'clone-collector'
        ? new zmq.Publisher({ linger: 0, sendHighWaterMark: FLOOD_SEND_HWM })
        : new zmq.Dealer({ linger: 0, sendHighWaterMark: FLOOD_SEND_HWM });
    s.connect(job.endpoint);
    if (s instanceof zmq.Dealer) {
      void (async () => {
        try {
          for await (const _ of s) replies++;
        } catch {
          // closed
        }
      })();
    }
    return s;
  };
  let sock = open();
  let sent = 0;
  try {
    for (; sent < job.frames; sent++) {
      if (job.peerFrames > 0 && sent > 0 && sent % job.peerFrames === 0) {
        sock.close();
        sock = open();
      }
      await sock.send(hostileMessage(job.target, rng));
    }
  } finally {
    sock.close();
  }
  return { sent, replies };
}

flood(workerData as FloodJob).then(
  (result) => parentPort?.postMessage(result),
  (err: unknown) => {
    throw err;
  },
);
