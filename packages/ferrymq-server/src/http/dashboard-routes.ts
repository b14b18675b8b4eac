/**
 * The dashboard: plain HTML, JS and CSS files in src/http/dashboard/, served as they are (no
 * build step, no CDN). The page is `/`; every other file of the folder (the entry module
 * dashboard.js, the modules it imports with relative paths, the style sheets) is
 * `/dashboard/<file>`. It reads /v1/stats, /v1/events/stats
 * (live) and the other gateway routes like any other client.
 *
 * Every file goes out with a Content-Security-Policy that lets the page run only its own
 * scripts and styles (no inline script, no eval, no other origin), `X-Frame-Options: DENY`
 * (no framing, so no clickjacking) and `X-Content-Type-Options: nosniff`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/** Where the asset files are, from dist/http/ (compiled) or src/http/ (sources). */
const DASHBOARD_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../src/http/dashboard',
);

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** Only the gateway's own files; `data:` for the empty favicon; no frames, plugins or bases. */
const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export function registerDashboardRoutes(app: FastifyInstance): void {
  // The folder's file list is read once at start: nothing outside it can be named by a request.
  for (const file of fs.readdirSync(DASHBOARD_DIR).sort()) {
    const type = TYPES[path.extname(file)];
    if (type === undefined) continue;
    const route = file === 'index.html' ? '/' : `/dashboard/${file}`;
    const body = fs.readFileSync(path.join(DASHBOARD_DIR, file));
    app.get(route, { schema: { tags: ['ops'], summary: `Dashboard: ${file}` } }, (_req, reply) =>
      reply
        .type(type)
        .header('cache-control', 'no-cache')
        .header('content-security-policy', DASHBOARD_CSP)
        .header('x-frame-options', 'DENY')
        .header('x-content-type-options', 'nosniff')
        .send(body),
    );
  }
}
