/** ferrymq-server: run a broker inside your own process. */
export { startServer, type RunningServer, type StartOptions } from './server.js';
export {
  loadConfig,
  parseSync,
  formatSync,
  DEFAULT_CONFIG,
  CONFIG_SCHEMA,
  type FerryConfig,
} from './config.js';
export { DEFAULT_BIND } from './config-schema.js';
export type { ConfigSources } from './config-sources.js';
export { createLogger } from './logger.js';
