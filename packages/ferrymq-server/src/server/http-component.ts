/**
 * The HTTP gateway (REST, dashboard, /metrics and the metrics it keeps) as a component. Last
 * to start, first to drain: Fastify's close stops listening and lets requests in flight
 * finish against a core still open, so the gateway does all its closing in drain().
 */
import type { Logger } from '../core/logger.js';
import type { HttpGateway } from '../http/gateway.js';
import type { ReadinessProbe } from '../http/health-routes.js';
import { splitHttpAddress, type FerryConfig } from './config.js';
import type { CoreComponent } from './core-component.js';
import type { ZmwsComponent } from './dialect-components.js';
import type { Component } from './lifecycle.js';
import type { AuthModel } from '../security/auth-model.js';
import { readAuthFile, readTlsFiles } from './http-security-files.js';

export interface HttpComponentOptions {
  config: FerryConfig;
  /** `host:port` to listen on (the configured `http`). */
  address: string;
  core: CoreComponent;
  /** The ZMWS dialect, when on: the HTTP ZMWS routes answer its SERVER-* listings alike. */
  zmws: ZmwsComponent | undefined;
  /** The server's readiness, for `/readyz` (server/readiness.ts). */
  readiness: ReadinessProbe;
  /** This package's version (the OpenAPI document's). */
  version: string;
  logger: Logger;
  /**
   * The auth file's users as loaded now, from whoever reloads it; without, the component
   * reads `authFile` once at start.
   */
  auth?: (() => AuthModel | undefined) | undefined;
}

export class HttpComponent implements Component {
  readonly name = 'http';
  gateway: HttpGateway | undefined;

  constructor(private readonly options: HttpComponentOptions) {}

  async start(): Promise<void> {
    const { config, core, zmws, logger, readiness, version } = this.options;
    const { host, port } = splitHttpAddress(this.options.address);
    const { broker, jobs, pubsub, stats } = core.parts;
    const listing = zmws?.dialect;
    const tls = readTlsFiles(config);
    let auth = this.options.auth;
    if (auth === undefined && config.authFile !== undefined) {
      const model = readAuthFile(config.authFile);
      auth = () => model;
    }
    // Loaded only when the gateway is on: Fastify and its plugins cost ~20 MB of memory.
    const { startGateway } = await import('../http/gateway.js');
    this.gateway = await startGateway({
      broker,
      jobs,
      pubsub,
      stats,
      host,
      port,
      bodyLimitBytes: config.httpBodyLimitBytes,
      jobAdmin: jobs,
      topics: pubsub,
      // The ZMWS routes exist only with the ZMWS dialect on.
      zmwsListing: listing ? (query) => listing.listing(query) : undefined,
      readiness,
      version,
      logger,
      tls,
      auth,
      allowedHosts: config.httpHosts,
      allowedOrigins: config.httpOrigins,
      metricsToken: config.metricsToken,
      rateLimitPerMinute: config.httpRateLimit,
    });
  }

  async drain(): Promise<void> {
    await this.gateway?.close();
  }

  async close(): Promise<void> {
    // Closed when draining: no socket, no timer left.
  }

  connections(): number | undefined {
    return this.gateway?.connections;
  }
}
