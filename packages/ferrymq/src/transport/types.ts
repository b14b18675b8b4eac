/** What the rest of Ferry sees of ZeroMQ: peers, frames, and nothing else. */

/** A bound endpoint that many peers connect to (a ZeroMQ ROUTER underneath). */
export interface ServerEndpoint {
  /** The resolved endpoint, e.g. tcp://127.0.0.1:41234 after binding tcp://127.0.0.1:*. */
  readonly endpoint: string;
  /** Queue frames for a peer. Never throws; a message for a vanished peer is dropped and counted. */
  send(peer: Buffer, frames: Buffer[]): void;
  /** Messages that could not be sent (peer gone or its pipe full). */
  readonly dropped: number;
  close(): Promise<void>;
}

/** A connection to one broker (a ZeroMQ DEALER underneath). */
export interface ClientConnection {
  readonly endpoint: string;
  send(frames: Buffer[]): void;
  close(): Promise<void>;
}

export interface ClientConnectionEvents {
  onMessage(frames: Buffer[]): void;
  /** The TCP connection dropped (ZeroMQ will reconnect by itself). */
  onDisconnect?(): void;
  /** The TCP connection was (re)established. */
  onConnect?(): void;
  /** A connection attempt failed (refused, or the host did not resolve); ZeroMQ retries it. */
  onConnectRetry?(): void;
  /**
   * The security handshake was refused (the broker's ZAP handler refused the key) or keeps
   * failing (wrong server key, CURVE on one side only): nothing will ever be answered.
   */
  onAuthFailed?(reason: string): void;
}

/** How a client socket connects: in the clear, or with CURVE keys (Z85). */
export interface ClientSocketOptions {
  curve?: { serverKey: string; publicKey: string; secretKey: string } | undefined;
}

/**
 * A bound endpoint that peers connect to and that sends round-robin to them, without
 * addressing any one (a ZeroMQ DEALER underneath: PZQ's consumer side).
 */
export interface FanOutEndpoint {
  readonly endpoint: string;
  /** Connections open now. */
  readonly peers: number;
  /** Queue frames for the next peer in turn; waits while no peer is connected. */
  send(frames: Buffer[]): void;
  /** Takes back what is queued and not yet handed to ZeroMQ (e.g. when every peer left). */
  takeQueued(): Buffer[][];
  close(): Promise<void>;
}

export interface FanOutEvents {
  onMessage(frames: Buffer[]): void;
  /** The number of connected peers changed. */
  onPeers?(count: number): void;
}
