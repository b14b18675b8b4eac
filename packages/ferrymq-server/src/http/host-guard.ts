/**
 * Refuses requests whose `Host` the gateway does not know: the guard against DNS rebinding. A
 * hostile page at `attacker.example` can make its name resolve to 127.0.0.1 and then call the
 * gateway as its own origin; the browser still sends `Host: attacker.example`. Only loopback
 * name `localhost`, IP addresses (a page cannot rebind a name it does not
 * use) and the configured names are answered; any other is 403 `FORBIDDEN_HOST` before any
 * route runs, reads included. Clients that send no `Host` (HTTP/1.0 programs) go on.
 */
import type { FastifyInstance } from 'fastify';
import { FerryError } from 'ferrymq/model';
import { isIP } from 'node:net';

export interface HostGuardOptions {
  /** Names answered besides loopback names and addresses (lower case, no port). */
  allowedHosts: readonly string[];
}

/** The name of a `Host` header without its port, lower case, an IPv6 address without brackets. */
function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') === -1 ? undefined : h.indexOf(']'));
  const colon = h.lastIndexOf(':');
  return colon === -1 ? h : h.slice(0, colon);
}

export function registerHostGuard(app: FastifyInstance, o: HostGuardOptions): void {
  const allowed = new Set(o.allowedHosts.map((h) => h.toLowerCase()));
  app.addHook('onRequest', (req, _reply, done) => {
    const host = req.headers.host;
    if (host === undefined) return done();
    const name = hostName(host);
    if (isIP(name) !== 0 || name === 'localhost' || allowed.has(name)) return done();
    done(
      new FerryError(
        'FORBIDDEN_HOST',
        `this gateway does not answer for host ${JSON.stringify(name)} (loopback names, IP addresses and httpHosts only)`,
      ),
    );
  });
}
