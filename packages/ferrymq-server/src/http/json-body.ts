/**
 * The gateway's JSON body parser. Stricter than JSON.parse alone:
 *
 * - nesting deeper than {@link MAX_JSON_DEPTH} is refused (`JSON_TOO_DEEP`) before parsing, so
 *   neither the parser nor the schema validator recurses into a hostile 10,000-level body;
 * - a `__proto__` key anywhere is refused (`JSON_FORBIDDEN_KEY`): JSON.parse keeps it as an
 *   own property, but any later `Object.assign` or merge of such an object would replace
 *   that object's prototype, so it never enters the broker;
 * - an empty body or invalid JSON is `BAD_JSON`.
 */
import { FerryError } from 'ferrymq/model';

/** Deepest nesting of arrays and objects a request body may have. */
const MAX_JSON_DEPTH = 64;

/** The key refused anywhere in a body. */
const FORBIDDEN_KEY = '__proto__';

const OPEN_OBJECT = 0x7b; // {
const OPEN_ARRAY = 0x5b; // [
const CLOSE_OBJECT = 0x7d; // }
const CLOSE_ARRAY = 0x5d; // ]
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \

/** Throws JSON_TOO_DEEP when brackets outside strings nest deeper than MAX_JSON_DEPTH. */
function checkDepth(text: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > MAX_JSON_DEPTH) {
        throw new FerryError(
          'JSON_TOO_DEEP',
          `the JSON body nests deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`,
        );
      }
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    }
  }
}

/** Throws JSON_FORBIDDEN_KEY when an object in `value` has a `__proto__` key. */
function checkKeys(value: unknown): void {
  // Iterative: the depth is bounded already, but no recursion is needed either.
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const v = pending.pop();
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (const item of v as unknown[]) pending.push(item);
      continue;
    }
    if (Object.hasOwn(v, FORBIDDEN_KEY)) {
      throw new FerryError(
        'JSON_FORBIDDEN_KEY',
        `the JSON body has a "${FORBIDDEN_KEY}" key, which the gateway refuses anywhere`,
      );
    }
    for (const item of Object.values(v)) pending.push(item);
  }
}

/** Parses a request body as JSON, with the checks above. */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') {
    throw new FerryError('BAD_JSON', 'the body is empty; send JSON or no body at all');
  }
  checkDepth(text);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new FerryError('BAD_JSON', `the body is not valid JSON: ${(err as Error).message}`);
  }
  checkKeys(value);
  return value;
}
