/**
 * What `/readyz` checks: the server composes it (it knows its life cycle, the data folder and
 * the disk watcher) and hands it to the gateway, which never reaches the store itself.
 *
 * Ready means: every component started (so every endpoint is bound), the server is not
 * draining or stopping, and the store can take writes (the data folder is writable, free
 * disk is above the floor, the broker is not closing).
 */
import fs from 'node:fs';
import type { ReadinessCheck, ReadinessProbe } from '../http/health-routes.js';

/** Where the server is in its life. */
export type ServerPhase = 'starting' | 'running' | 'stopping';

export interface ReadinessOptions {
  dataDir: string;
  phase: () => ServerPhase;
  /** True while free disk is below the floor (sends are refused). */
  isStorageLow: () => boolean;
  /** True once the broker closes (undefined before the core started). */
  isBrokerClosing: () => boolean | undefined;
}

function check(name: string, problem: string | undefined): ReadinessCheck {
  return problem === undefined ? { name, ok: true } : { name, ok: false, detail: problem };
}

function storeProblem(o: ReadinessOptions): string | undefined {
  const closing = o.isBrokerClosing();
  if (closing === undefined) return 'the core is not started';
  if (closing) return 'the broker is closing';
  if (o.isStorageLow()) return 'free disk is below the floor (minFreeDiskBytes)';
  try {
    fs.accessSync(o.dataDir, fs.constants.W_OK);
  } catch (err) {
    return `the data folder is not writable: ${(err as Error).message}`;
  }
  return undefined;
}

export function readinessProbe(o: ReadinessOptions): ReadinessProbe {
  return () => {
    const phase = o.phase();
    return [
      check('endpoints bound', phase === 'running' ? undefined : phase),
      check('store writable', storeProblem(o)),
    ];
  };
}
