/** ferrymq/server: run a broker inside your own process. */
export { startServer, type RunningServer, type StartOptions } from './server.js';
export {
  loadConfig,
  parseSync,
  formatSync,
  DEFAULT_CONFIG,
  DEFAULT_BIND,
  CONFIG_SCHEMA,
  type FerryConfig,
  type ConfigSources,
} from './config.js';
export { createLogger } from './logger.js';
