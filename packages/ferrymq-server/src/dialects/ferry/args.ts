/** Readers for FERRY01 argument objects: each refuses a wrong type with BAD_ARGUMENTS. */
import { FerryError } from 'ferrymq/model';
import type { Json } from 'ferrymq/protocol';

export function settled(ids: string[], results: (string | null)[]): Json {
  const failed: Json[] = [];
  for (let i = 0; i < ids.length; i++) {
    const code = results[i];
    if (code !== null && code !== undefined) failed.push({ id: ids[i], code });
  }
  return { done: ids.length - failed.length, failed };
}

export function reqString(args: Json, key: string): string {
  const v = args[key];
  if (typeof v !== 'string') throw new FerryError('BAD_ARGUMENTS', `${key} must be a string`);
  return v;
}

export function optString(args: Json, key: string): string | undefined {
  const v = args[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new FerryError('BAD_ARGUMENTS', `${key} must be a string`);
  return v;
}

export function optNumber(args: Json, key: string): number | undefined {
  const v = args[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new FerryError('BAD_ARGUMENTS', `${key} must be a number`);
  }
  return v;
}

export function optInt(args: Json, key: string): number | undefined {
  const v = optNumber(args, key);
  if (v !== undefined && !Number.isInteger(v)) {
    throw new FerryError('BAD_ARGUMENTS', `${key} must be an integer`);
  }
  return v;
}

export function optBool(args: Json, key: string): boolean | undefined {
  const v = args[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new FerryError('BAD_ARGUMENTS', `${key} must be true or false`);
  return v;
}

const MAX_IDS_PER_REQUEST = 100_000;

export function reqIds(args: Json): string[] {
  const v = args['ids'];
  if (
    !Array.isArray(v) ||
    v.length > MAX_IDS_PER_REQUEST ||
    !v.every((x) => typeof x === 'string')
  ) {
    throw new FerryError('BAD_ARGUMENTS', 'ids must be an array of message id strings');
  }
  return v;
}
