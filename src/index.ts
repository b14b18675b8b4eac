/** ferrymq: the client SDK (the package's main export). The broker is at ferrymq/server. */
export {
  connect,
  FerryClient,
  DEFAULT_ENDPOINT,
  type Body,
  type ClientStatus,
  type ConnectOptions,
  type ConsumeOptions,
  type Consumer,
  type Message,
  type NackOptions,
  type OutgoingMessage,
  type PeekedMessage,
  type QueueStats,
  type SendOptions,
  type Stats,
} from './client/client.js';
export { FerryError, ERROR_REGISTRY, isErrorCode, type ErrorCode } from './errors.js';
