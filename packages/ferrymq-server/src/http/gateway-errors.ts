/**
 * How the gateway answers what went wrong: every error (a route's, Fastify's, a schema
 * violation) becomes `{code, message[, field]}` with a code from the one registry; a known
 * path asked with another method gets 405 and an `Allow` header.
 */
import type { FastifyError } from 'fastify';
import { FerryError, toFerryError, type ErrorCode } from 'ferrymq/model';

/** Fastify's own error codes, as the gateway answers them. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_ARGUMENTS',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_JSON',
};

/** Path parameters that hold names, and the code a bad one gets. */
const NAME_PARAMS: Record<string, ErrorCode> = {
  '/queue': 'INVALID_QUEUE_NAME',
  '/service': 'INVALID_SERVICE_NAME',
};

/** Path prefixes whose (first) parameter is a name, for a parameter too long to route. */
const NAME_PATH_PREFIXES: [string, ErrorCode][] = [
  ['/v1/queues/', 'INVALID_QUEUE_NAME'],
  ['/v1/services/', 'INVALID_SERVICE_NAME'],
];

/** What the names in the path may be, for the message of an invalid one. */
const NAME_RULE = '1–200 characters of A–Z a–z 0–9 . _ : - (not "." or "..")';

/** One Ajv error, as Fastify hands it over (Ajv runs with `verbose`). */
interface SchemaViolation {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
  parentSchema?: { properties?: Record<string, unknown> };
}

/** `body.messages[0].priority` from context `body` and path `/messages/0/priority`. */
function fieldOf(context: string, instancePath: string): string {
  let out = context;
  for (const part of instancePath.split('/').slice(1)) {
    out += /^\d+$/.test(part) ? `[${part}]` : `.${part}`;
  }
  return out;
}

/** A message that names the field and, where there is a list, what is allowed. */
function violationMessage(context: string, v: SchemaViolation): { field: string; text: string } {
  const field = fieldOf(context, v.instancePath);
  const allowedFields = Object.keys(v.parentSchema?.properties ?? {});
  switch (v.keyword) {
    case 'enum': {
      const allowed = (v.params['allowedValues'] as unknown[]).map(String).join(', ');
      return { field, text: `${field} must be one of: ${allowed}` };
    }
    case 'additionalProperties': {
      const extra = String(v.params['additionalProperty']);
      const list = allowedFields.length > 0 ? allowedFields.join(', ') : 'none';
      return {
        field: `${field}.${extra}`,
        text: `${field} has an unknown field "${extra}"; allowed fields: ${list}`,
      };
    }
    case 'required': {
      const missing = String(v.params['missingProperty']);
      return { field: `${field}.${missing}`, text: `${field} needs the field "${missing}"` };
    }
    case 'type':
      return { field, text: `${field} must be of type ${String(v.params['type'])}` };
    default:
      return { field, text: `${field} ${v.message ?? 'is not valid'}` };
  }
}

/** Maps anything a route or Fastify threw to the FerryError the client gets. */
export function gatewayError(err: unknown): FerryError {
  if (err instanceof FerryError) return err;
  const e = err as FastifyError & { validation?: SchemaViolation[] };
  if (e.validation && e.validation.length > 0) {
    const context = e.validationContext ?? 'request';
    const v = e.validation[0]!;
    const nameCode = context === 'params' ? NAME_PARAMS[v.instancePath] : undefined;
    if (nameCode) {
      return new FerryError(nameCode, `${v.instancePath.slice(1)} name must be ${NAME_RULE}`, {
        details: { field: fieldOf(context, v.instancePath) },
      });
    }
    const m = violationMessage(context, v);
    return new FerryError('BAD_ARGUMENTS', m.text, { details: { field: m.field } });
  }
  if (typeof e.code === 'string' && FASTIFY_CODES[e.code]) {
    return new FerryError(FASTIFY_CODES[e.code]!, e.message);
  }
  if (e instanceof SyntaxError) return new FerryError('BAD_JSON', e.message);
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new FerryError('BAD_ARGUMENTS', e.message);
  }
  return toFerryError(err);
}

/**
 * Errors the router raises before any route runs: a path parameter longer than the router
 * takes (a 10 KB name), a URL that does not decode.
 */
export function routerError(err: FastifyError, path: string): FerryError {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    const named = NAME_PATH_PREFIXES.find(([prefix]) => path.startsWith(prefix));
    if (named) return new FerryError(named[1], `the name is too long: it must be ${NAME_RULE}`);
    return new FerryError('BAD_ARGUMENTS', 'a path segment is too long');
  }
  return new FerryError('BAD_ARGUMENTS', `the URL is not valid: ${err.message}`);
}

/** The JSON an error answers. */
export function errorBody(fe: FerryError): { code: string; message: string; field?: string } {
  const field = fe.details?.['field'];
  return {
    code: fe.code,
    message: fe.message,
    ...(typeof field === 'string' ? { field } : {}),
  };
}

/**
 * The routes' paths as patterns, to tell "no such path" (404) from "not with this method"
 * (405, with the methods that are).
 */
export class RouteMethods {
  private readonly byPattern = new Map<string, { re: RegExp; methods: Set<string> }>();

  add(method: string, url: string): void {
    let entry = this.byPattern.get(url);
    if (!entry) {
      const re = new RegExp(
        '^' +
          url
            .split('/')
            .map((seg) =>
              seg.startsWith(':')
                ? '[^/]+'
                : seg === '*'
                  ? '.*'
                  : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
            )
            .join('/') +
          '$',
      );
      entry = { re, methods: new Set() };
      this.byPattern.set(url, entry);
    }
    entry.methods.add(method);
  }

  /** The methods `path` is served with (empty: no route has that path). */
  allowed(path: string): string[] {
    const out = new Set<string>();
    for (const { re, methods } of this.byPattern.values()) {
      if (re.test(path)) for (const m of methods) out.add(m);
    }
    return [...out].sort();
  }
}
