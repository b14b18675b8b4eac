/**
 * The dashboard: plain HTML, JS and CSS files in src/http/dashboard/, served as they are (no
 * build step, no CDN). The page reads /v1/stats, /v1/events/stats (live), /v1/jobs and the
 * queue routes like any other client of the gateway.
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

const ASSETS: { route: string; file: string; type: string }[] = [
  { route: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { route: '/dashboard.js', file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  { route: '/dashboard.css', file: 'dashboard.css', type: 'text/css; charset=utf-8' },
];

export function registerDashboardRoutes(app: FastifyInstance): void {
  for (const a of ASSETS) {
    const body = fs.readFileSync(path.join(DASHBOARD_DIR, a.file));
    app.get(
      a.route,
      { schema: { tags: ['ops'], summary: `Dashboard: ${a.file}` } },
      (_req, reply) => reply.type(a.type).header('cache-control', 'no-cache').send(body),
    );
  }
}
