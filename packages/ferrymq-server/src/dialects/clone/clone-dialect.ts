/**
 * The Clone dialect: the Clustered Hashmap Protocol (ZeroMQ RFC 12/CHP) over Ferry's retained
 * topics. A Clone key is a Ferry topic; its value is the topic's retained value.
 *
 *   snapshot (ROUTER, port P):   ICANHAZ? <subtree>  →  KVSYNC … then KTHXBAI <seq> <subtree>
 *   publisher (PUB, port P+1):   KVPUB <key> <seq> <uuid> <properties> <value>; HUGZ when idle
 *   collector (SUB, port P+2):   KVSET <key> <seq> <uuid> <properties> <value>
 *
 * Every message on the publisher and snapshot ports has exactly five frames. A KVSET becomes a
 * retained publish (so Ferry subscribers see it), and every retained publish — from Ferry or
 * Clone, including deletes and TTL expiries — goes out as a KVPUB with Ferry's sequence
 * number, which strictly increases. The `ttl` property (seconds) becomes the retained TTL; an
 * empty value deletes. This file maps frames onto core calls and nothing else.
 */
import { isValidTopic, prefixPattern } from '../../core/topics.js';
import type { LiveSubscription, PubSub, TopicMessage } from '../../core/pubsub.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import type { ErrorCode } from 'ferrymq/model';

const ICANHAZ = 'ICANHAZ?';
const KTHXBAI = 'KTHXBAI';
const HUGZ = 'HUGZ';
const HUGZ_INTERVAL_MS = 1_000;
const CLONE_FRAMES = 5;
const SEQUENCE_BYTES = 8;
const UUID_BYTES = 16;
/** Headers a Clone update's UUID and properties travel in, inside Ferry. */
const CLONE_UUID_HEADER = 'clone-uuid';
const CLONE_PROPS_HEADER = 'clone-props';
const TTL_PROPERTY = 'ttl';
const MS_PER_SECOND = 1_000;
const EMPTY = Buffer.alloc(0);

export interface CloneDialectOptions {
  clock?: Clock;
  logger?: Logger;
  hugzIntervalMs?: number;
}

/** Sends a five-frame message to the snapshot peer. */
export type SnapshotSend = (peer: Buffer, frames: Buffer[]) => void;
/** Broadcasts a five-frame message on the publisher socket. */
export type Broadcast = (frames: Buffer[]) => void;

function encodeSequence(seq: number): Buffer {
  const b = Buffer.alloc(SEQUENCE_BYTES);
  b.writeBigUInt64BE(BigInt(seq));
  return b;
}

/** Parses "name=value\n" lines; null when malformed. */
function parseProperties(text: string): Map<string, string> | null {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const i = line.indexOf('=');
    if (i <= 0) return null;
    out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

export class CloneDialect {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly hugzIntervalMs: number;
  private readonly feed: LiveSubscription;
  private lastSentAt: number;
  private cancelHugz: (() => void) | undefined;
  private closed = false;
  /** Messages refused, by code (there is no reply channel on PUB/SUB): for stats and tests. */
  readonly errorCounts = new Map<ErrorCode, number>();
  /** KVSETs applied. */
  applied = 0;

  constructor(
    private readonly pubsub: PubSub,
    private readonly sendSnapshot: SnapshotSend,
    private readonly broadcast: Broadcast,
    options: CloneDialectOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.log = options.logger ?? silentLogger;
    this.hugzIntervalMs = options.hugzIntervalMs ?? HUGZ_INTERVAL_MS;
    this.lastSentAt = this.clock.now();
    // Every retained change of every key, in sequence order, unbounded: PUB never blocks.
    this.feed = pubsub.attachLive(
      prefixPattern(''),
      {
        messages: (batch) => {
          for (const m of batch) if (m.retained) this.publishUpdate(m);
        },
        snapshot: () => {},
        dropped: () => {},
      },
      { window: 0 },
    );
    this.armHugz();
  }

  private refuse(code: ErrorCode, why: string): void {
    this.errorCounts.set(code, (this.errorCounts.get(code) ?? 0) + 1);
    this.log.warn('clone: message refused', { code, why });
  }

  private publishUpdate(m: TopicMessage): void {
    const uuidHex = m.headers?.[CLONE_UUID_HEADER];
    const uuid = uuidHex !== undefined ? Buffer.from(uuidHex, 'hex') : EMPTY;
    const props = m.headers?.[CLONE_PROPS_HEADER] ?? '';
    const value = m.deleted ? EMPTY : (m.frames[0] ?? EMPTY);
    this.broadcast([
      Buffer.from(m.topic, 'utf8'),
      encodeSequence(m.seq),
      uuid,
      Buffer.from(props, 'utf8'),
      value,
    ]);
    this.lastSentAt = this.clock.now();
  }

  private armHugz(): void {
    if (this.closed) return;
    this.cancelHugz = this.clock.setTimer(() => {
      if (this.closed) return;
      if (this.clock.now() - this.lastSentAt >= this.hugzIntervalMs - 1) {
        this.broadcast([Buffer.from(HUGZ), encodeSequence(0), EMPTY, EMPTY, EMPTY]);
        this.lastSentAt = this.clock.now();
      }
      this.armHugz();
    }, this.hugzIntervalMs);
  }

  /** A message on the snapshot (ROUTER) port. Never throws. */
  handleSnapshot(peer: Buffer, frames: Buffer[]): boolean {
    if (frames.length !== 2 || frames[0]!.toString('latin1') !== ICANHAZ) {
      this.refuse('BAD_FRAME', `snapshot port takes "${ICANHAZ}" <subtree> (2 frames)`);
      return false;
    }
    const subtree = frames[1]!.toString('utf8');
    if (subtree.length > 0 && !isValidTopic(subtree)) {
      this.refuse(
        'INVALID_TOPIC',
        `bad subtree ${JSON.stringify(frames[1]!.toString('utf8').slice(0, 60))}`,
      );
      return false;
    }
    this.pubsub.retained(prefixPattern(subtree)).then(
      (state) => {
        for (const m of state.items) {
          this.sendSnapshot(peer, [
            Buffer.from(m.topic, 'utf8'),
            encodeSequence(m.seq),
            EMPTY,
            EMPTY,
            m.frames[0] ?? EMPTY,
          ]);
        }
        // The snapshot's sequence: every update numbered after it reaches the client by KVPUB.
        this.sendSnapshot(peer, [
          Buffer.from(KTHXBAI),
          encodeSequence(state.seq),
          EMPTY,
          EMPTY,
          Buffer.from(subtree, 'utf8'),
        ]);
      },
      (err: unknown) => this.refuse('STORAGE_ERROR', String(err)),
    );
    return true;
  }

  /** A KVSET on the collector (SUB) port. Never throws. */
  handleCollector(frames: Buffer[]): void {
    if (frames.length !== CLONE_FRAMES) {
      this.refuse('BAD_FRAME', `KVSET has ${CLONE_FRAMES} frames; got ${frames.length}`);
      return;
    }
    const [keyF, seqF, uuidF, propsF, value] = frames as [Buffer, Buffer, Buffer, Buffer, Buffer];
    const key = keyF.toString('utf8');
    if (!isValidTopic(key)) {
      this.refuse('INVALID_TOPIC', `bad key ${JSON.stringify(keyF.toString('utf8').slice(0, 60))}`);
      return;
    }
    if (seqF.length !== SEQUENCE_BYTES && seqF.length !== 0) {
      this.refuse('BAD_FRAME', `sequence frame has ${seqF.length} bytes, not ${SEQUENCE_BYTES}`);
      return;
    }
    if (uuidF.length !== 0 && uuidF.length !== UUID_BYTES) {
      this.refuse('BAD_FRAME', `UUID frame has ${uuidF.length} bytes, not 0 or ${UUID_BYTES}`);
      return;
    }
    const propsText = propsF.toString('utf8');
    const props = parseProperties(propsText);
    if (props === null) {
      this.refuse('BAD_ARGUMENTS', 'properties are not name=value lines');
      return;
    }
    let ttlMs: number | undefined;
    const ttl = props.get(TTL_PROPERTY);
    if (ttl !== undefined) {
      const seconds = Number(ttl);
      if (!Number.isFinite(seconds) || seconds <= 0) {
        this.refuse('BAD_ARGUMENTS', `ttl must be a number of seconds > 0, got ${ttl}`);
        return;
      }
      ttlMs = Math.max(1, Math.round(seconds * MS_PER_SECOND));
    }
    const headers: Record<string, string> = {};
    if (uuidF.length > 0) headers[CLONE_UUID_HEADER] = uuidF.toString('hex');
    if (propsText.length > 0) headers[CLONE_PROPS_HEADER] = propsText;
    this.pubsub
      .publish(key, [value], {
        retain: true,
        ...(ttlMs !== undefined ? { ttlMs } : {}),
        ...(Object.keys(headers).length > 0 ? { headers } : {}),
      })
      .then(
        () => this.applied++,
        (err: unknown) => {
          const code = (err as { code?: ErrorCode }).code ?? 'INTERNAL';
          this.refuse(code, String(err));
        },
      );
  }

  close(): void {
    this.closed = true;
    this.cancelHugz?.();
    this.feed.close();
  }
}
