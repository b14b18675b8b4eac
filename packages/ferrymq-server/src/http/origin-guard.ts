/**
 * Refuses requests that a web page of another origin makes a browser send. The gateway sends
 * no CORS headers, so such a page can never read an answer — but a "simple" request (a POST
 * without a body, say `/v1/queues/{queue}/pause`) is still carried out before the browser
 * hides the answer. Browsers name the page's origin in `Origin` on every request that can
 * change something; a request whose origin is not the gateway's own is refused with 403
 * `FORBIDDEN_ORIGIN` before any route runs, unless it is one of the configured origins
 * (`httpOrigins`). Clients that are not browsers send no `Origin` and are not affected; the dashboard, served by the gateway itself, is same-origin. The ZMWS
 * routes are left open: ZMWS's browser clients call them from their own pages by design.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FerryError } from 'ferrymq/model';

/** Methods that only read: a page of another origin cannot read their answers anyway. */
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The host (`name:port`) of an `Origin` header, or undefined for `null` or garbage. */
function originHost(origin: string): string | undefined {
  try {
    const url = new URL(origin);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.host : undefined;
  } catch {
    return undefined;
  }
}

/** True when the request may go on: no browser origin, the gateway's own, or a listed one. */
function allowedOrigin(req: FastifyRequest, listed: ReadonlySet<string>): boolean {
  const origin = req.headers.origin;
  if (origin === undefined || listed.has(origin.toLowerCase())) return true;
  const host = originHost(origin);
  return host !== undefined && host === req.headers.host;
}

export interface OriginGuardOptions {
  /** Routes (their URL pattern) that stay open to every origin. */
  openRoutes: ReadonlySet<string>;
  /** Origins (`https://app.example`) whose pages may change things too. */
  allowedOrigins: readonly string[];
}

export function registerOriginGuard(app: FastifyInstance, o: OriginGuardOptions): void {
  const listed = new Set(o.allowedOrigins);
  app.addHook('onRequest', (req, _reply, done) => {
    if (READ_METHODS.has(req.method) || o.openRoutes.has(req.routeOptions.url ?? '')) {
      return done();
    }
    if (allowedOrigin(req, listed)) return done();
    done(
      new FerryError(
        'FORBIDDEN_ORIGIN',
        `a page of ${req.headers.origin} may not ${req.method} this gateway (only its own origin, ${req.headers.host ?? 'unknown'}, those of httpOrigins and clients that are not browsers)`,
      ),
    );
  });
}
