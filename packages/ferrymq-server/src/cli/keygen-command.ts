/**
 * `ferry keygen`: a CURVE key pair in Z85. With `--out <prefix>`, `<prefix>.pub` (the public
 * key, to share) and `<prefix>.key` (the secret key, mode 0600, to keep); without, both
 * printed. docs/security.md.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { generateKeyPair } from 'ferrymq';
import { FerryError } from 'ferrymq/model';
import { subcommand } from './cli-support.js';

/** Only the owner may read or write the secret key file. */
const SECRET_KEY_FILE_MODE = 0o600;
const PUBLIC_KEY_FILE_MODE = 0o644;

interface KeygenFlags {
  out?: string;
  force?: boolean;
}

function write(file: string, text: string, mode: number, force: boolean): void {
  try {
    fs.writeFileSync(file, text, { mode, flag: force ? 'w' : 'wx' });
    fs.chmodSync(file, mode); // an existing file (--force) keeps its old mode otherwise
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FerryError(
      'CONFIG_INVALID',
      code === 'EEXIST'
        ? `${file} exists; keys are never overwritten unless --force`
        : `cannot write ${file}: ${(err as Error).message}`,
    );
  }
}

export function registerKeygen(program: Command): void {
  subcommand(program, 'keygen', 'make a CURVE key pair (Z85): <prefix>.pub and <prefix>.key')
    .option('--out <prefix>', 'write <prefix>.pub and <prefix>.key (mode 0600) instead of printing')
    .option('--force', 'overwrite existing files')
    .action((o: KeygenFlags) => {
      const keys = generateKeyPair();
      if (o.out === undefined) {
        process.stdout.write(`public ${keys.publicKey}\nsecret ${keys.secretKey}\n`);
        return;
      }
      write(`${o.out}.key`, `${keys.secretKey}\n`, SECRET_KEY_FILE_MODE, o.force === true);
      write(`${o.out}.pub`, `${keys.publicKey}\n`, PUBLIC_KEY_FILE_MODE, o.force === true);
      process.stdout.write(`wrote ${o.out}.pub (public: ${keys.publicKey}) and ${o.out}.key\n`);
    });
}
