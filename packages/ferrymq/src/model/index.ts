/**
 * ferrymq/model: the shared model, the bottom layer. Types and constants the SDK, the broker's
 * core, its storage, dialects and gateway all speak; pure data, no I/O.
 */
export * from './body.js';
export * from './errors.js';
export * from './histogram.js';
export * from './jobs.js';
export * from './queues.js';
export * from './stats.js';
export * from './topics.js';
export * from './z85.js';
