/** One broker per data folder: a lock file holding the owner's pid. */
import fs from 'node:fs';
import path from 'node:path';
import { FerryError } from 'ferrymq/model';

export const LOCK_FILE = 'ferry.lock';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The pid of the live process (not this one) holding the folder's lock, or null: none, or a
 * stale lock of a process that died. Reads only; `ferry migrate` refuses a held folder.
 */
export function lockOwner(dataDir: string): number | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dataDir, LOCK_FILE), 'utf8');
  } catch {
    return null;
  }
  const owner = Number.parseInt(text.trim(), 10);
  return Number.isInteger(owner) && owner !== process.pid && pidAlive(owner) ? owner : null;
}

/** Creates the folder if needed and takes its lock; returns the release function. */
export function lockDataDir(dataDir: string): () => void {
  try {
    fs.mkdirSync(dataDir, { recursive: true });
    fs.accessSync(dataDir, fs.constants.W_OK);
  } catch (err) {
    throw new FerryError(
      'DATA_DIR_UNWRITABLE',
      `data folder ${dataDir} cannot be created or written (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      { cause: err },
    );
  }
  const file = path.join(dataDir, LOCK_FILE);
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fd = fs.openSync(file, 'wx');
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        try {
          if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.unlinkSync(file);
        } catch {
          /* already gone */
        }
      };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') {
        throw new FerryError(
          'DATA_DIR_UNWRITABLE',
          `cannot write ${file} (${code ?? String(err)})`,
          {
            cause: err,
          },
        );
      }
      const owner = lockOwner(dataDir);
      if (owner !== null) {
        throw new FerryError(
          'DATA_DIR_LOCKED',
          `data folder ${dataDir} is in use by another broker (pid ${owner})`,
        );
      }
      // A stale lock from a broker that died: take it over.
      fs.rmSync(file, { force: true });
    }
  }
  throw new FerryError('DATA_DIR_LOCKED', `could not take the lock on ${dataDir}`);
}
