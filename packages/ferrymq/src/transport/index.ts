/**
 * ferrymq/transport: what the broker's side of the transport shares with the SDK's (the
 * connection interfaces, the send queue, bind retries). Only transport code imports zeromq.
 */
export * from './socket-helpers.js';
export * from './types.js';
