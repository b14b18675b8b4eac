/**
 * The Majordomo wire format, both versions: 7/MDP (MDP/0.1) and 18/MDP (MDP/0.2). Pure
 * decode and encode of the frames after the ROUTER routing id; no state, no I/O.
 *
 * MDP/0.1 commands start with an empty frame and the header (`MDPC01` / `MDPW01`);
 * MDP/0.2 commands start with the header (`MDPC02` / `MDPW02`) and have no empty frame.
 */

const MDP_CLIENT_V1 = 'MDPC01';
const MDP_WORKER_V1 = 'MDPW01';
const MDP_CLIENT_V2 = 'MDPC02';
const MDP_WORKER_V2 = 'MDPW02';

export type MdpVersion = 1 | 2;

/** MDP/0.1 worker command bytes (7/MDP). */
const MDPW01_READY = 0x01;
const MDPW01_REQUEST = 0x02;
const MDPW01_REPLY = 0x03;
const MDPW01_HEARTBEAT = 0x04;
const MDPW01_DISCONNECT = 0x05;

/** MDP/0.2 client command bytes (18/MDP). */
const MDPC02_REQUEST = 0x01;
const MDPC02_PARTIAL = 0x02;
const MDPC02_FINAL = 0x03;

/** MDP/0.2 worker command bytes (18/MDP). */
const MDPW02_READY = 0x01;
const MDPW02_REQUEST = 0x02;
const MDPW02_PARTIAL = 0x03;
const MDPW02_FINAL = 0x04;
const MDPW02_HEARTBEAT = 0x05;
const MDPW02_DISCONNECT = 0x06;

/** Longest service name accepted on the wire (the core applies its own, stricter rule). */
const MDP_MAX_SERVICE_NAME_BYTES = 255;

/** A client asks a service for something. */
export interface MdpClientRequest {
  kind: 'client-request';
  version: MdpVersion;
  service: string;
  body: Buffer[];
}

/** A worker command, already checked for shape. */
export type MdpWorkerCommand =
  | { kind: 'worker'; version: MdpVersion; command: 'READY'; service: string }
  | {
      kind: 'worker';
      version: MdpVersion;
      /** REPLY is MDP/0.1; PARTIAL and FINAL are MDP/0.2. */
      command: 'REPLY' | 'PARTIAL' | 'FINAL';
      address: Buffer;
      body: Buffer[];
      /** False when the empty frame after the address was missing (tolerated). */
      delimited: boolean;
    }
  | { kind: 'worker'; version: MdpVersion; command: 'HEARTBEAT' | 'DISCONNECT' };

/**
 * A message that is not valid MDP. `from` says whose header it carried, when it had a known
 * one: a worker gets DISCONNECT, a client's message is dropped, anything else is dropped.
 */
interface MdpInvalid {
  kind: 'invalid';
  from: 'client' | 'worker' | 'unknown';
  version: MdpVersion | undefined;
  reason: string;
}

export type MdpMessage = MdpClientRequest | MdpWorkerCommand | MdpInvalid;

const EMPTY = Buffer.alloc(0);

function invalid(
  from: MdpInvalid['from'],
  version: MdpVersion | undefined,
  reason: string,
): MdpInvalid {
  return { kind: 'invalid', from, version, reason };
}

function isHeader(frame: Buffer | undefined, header: string): boolean {
  return (
    frame !== undefined && frame.length === header.length && frame.toString('latin1') === header
  );
}

function serviceName(frame: Buffer | undefined): string | undefined {
  if (frame === undefined || frame.length === 0 || frame.length > MDP_MAX_SERVICE_NAME_BYTES) {
    return undefined;
  }
  return frame.toString('utf8');
}

/** The one-byte command frame, or undefined when the frame is not exactly one byte. */
function commandByte(frame: Buffer | undefined): number | undefined {
  return frame !== undefined && frame.length === 1 ? frame[0] : undefined;
}

/**
 * Splits `[address, empty?, body…]`. The empty delimiter after the address is consumed only
 * when it is there: the zguide PHP worker API sends REPLY without it.
 */
function addressAndBody(
  frames: Buffer[],
  at: number,
): { address: Buffer; body: Buffer[]; delimited: boolean } | undefined {
  const address = frames[at];
  if (address === undefined || address.length === 0) return undefined;
  const next = frames[at + 1];
  const delimited = next !== undefined && next.length === 0;
  return { address, body: frames.slice(at + (delimited ? 2 : 1)), delimited };
}

function decodeClient(frames: Buffer[], version: MdpVersion, start: number): MdpMessage {
  // start: index of the first frame after the header.
  if (version === 2) {
    const cmd = commandByte(frames[start]);
    if (cmd !== MDPC02_REQUEST) {
      return invalid('client', 2, 'a client may only send REQUEST (0x01)');
    }
    start++;
  }
  const service = serviceName(frames[start]);
  if (service === undefined) return invalid('client', version, 'missing or empty service name');
  const body = frames.slice(start + 1);
  if (body.length === 0) return invalid('client', version, 'a request needs a body frame');
  return { kind: 'client-request', version, service, body };
}

function decodeWorkerV1(frames: Buffer[]): MdpMessage {
  // frames: ['', 'MDPW01', cmd, …]
  const cmd = commandByte(frames[2]);
  const rest = frames.length - 3;
  switch (cmd) {
    case MDPW01_READY: {
      const service = serviceName(frames[3]);
      if (rest !== 1 || service === undefined) {
        return invalid('worker', 1, 'READY takes exactly one non-empty service name frame');
      }
      return { kind: 'worker', version: 1, command: 'READY', service };
    }
    case MDPW01_REPLY: {
      const split = addressAndBody(frames, 3);
      if (!split) return invalid('worker', 1, 'REPLY needs a non-empty client address frame');
      return { kind: 'worker', version: 1, command: 'REPLY', ...split };
    }
    case MDPW01_HEARTBEAT:
    case MDPW01_DISCONNECT:
      if (rest !== 0) return invalid('worker', 1, 'HEARTBEAT and DISCONNECT take no frames');
      return {
        kind: 'worker',
        version: 1,
        command: cmd === MDPW01_HEARTBEAT ? 'HEARTBEAT' : 'DISCONNECT',
      };
    case MDPW01_REQUEST:
      return invalid('worker', 1, 'REQUEST goes from broker to worker, never back');
    default:
      return invalid('worker', 1, 'unknown worker command');
  }
}

function decodeWorkerV2(frames: Buffer[]): MdpMessage {
  // frames: ['MDPW02', cmd, …]
  const cmd = commandByte(frames[1]);
  const rest = frames.length - 2;
  switch (cmd) {
    case MDPW02_READY: {
      const service = serviceName(frames[2]);
      if (rest !== 1 || service === undefined) {
        return invalid('worker', 2, 'READY takes exactly one non-empty service name frame');
      }
      return { kind: 'worker', version: 2, command: 'READY', service };
    }
    case MDPW02_PARTIAL:
    case MDPW02_FINAL: {
      const split = addressAndBody(frames, 2);
      const command = cmd === MDPW02_PARTIAL ? 'PARTIAL' : 'FINAL';
      if (!split) return invalid('worker', 2, `${command} needs a non-empty client address frame`);
      return { kind: 'worker', version: 2, command, ...split };
    }
    case MDPW02_HEARTBEAT:
    case MDPW02_DISCONNECT:
      if (rest !== 0) return invalid('worker', 2, 'HEARTBEAT and DISCONNECT take no frames');
      return {
        kind: 'worker',
        version: 2,
        command: cmd === MDPW02_HEARTBEAT ? 'HEARTBEAT' : 'DISCONNECT',
      };
    case MDPW02_REQUEST:
      return invalid('worker', 2, 'REQUEST goes from broker to worker, never back');
    default:
      return invalid('worker', 2, 'unknown worker command');
  }
}

/** Decodes one message (without the routing id). Never throws. */
export function decodeMdp(frames: Buffer[]): MdpMessage {
  const first = frames[0];
  if (first === undefined) return invalid('unknown', undefined, 'empty message');
  if (first.length === 0) {
    const header = frames[1];
    if (isHeader(header, MDP_CLIENT_V1)) return decodeClient(frames, 1, 2);
    if (isHeader(header, MDP_WORKER_V1)) return decodeWorkerV1(frames);
    if (isHeader(header, MDP_CLIENT_V2)) {
      return invalid('client', 2, 'MDPC02 takes no empty frame before the header');
    }
    if (isHeader(header, MDP_WORKER_V2)) {
      return invalid('worker', 2, 'MDPW02 takes no empty frame before the header');
    }
    return invalid('unknown', undefined, 'unknown protocol header (expected MDPC01 or MDPW01)');
  }
  if (isHeader(first, MDP_CLIENT_V2)) return decodeClient(frames, 2, 1);
  if (isHeader(first, MDP_WORKER_V2)) return decodeWorkerV2(frames);
  if (isHeader(first, MDP_CLIENT_V1) || isHeader(first, MDP_WORKER_V1)) {
    return invalid(
      isHeader(first, MDP_CLIENT_V1) ? 'client' : 'worker',
      1,
      'MDP/0.1 needs an empty frame before the header',
    );
  }
  return invalid('unknown', undefined, 'unknown protocol header (expected MDPC02 or MDPW02)');
}

const HEADER_FRAMES = {
  c1: Buffer.from(MDP_CLIENT_V1),
  w1: Buffer.from(MDP_WORKER_V1),
  c2: Buffer.from(MDP_CLIENT_V2),
  w2: Buffer.from(MDP_WORKER_V2),
};

function byte(b: number): Buffer {
  return Buffer.from([b]);
}

/** A body needs at least one frame on the wire; an empty result travels as one empty frame. */
function nonEmptyBody(body: Buffer[]): Buffer[] {
  return body.length > 0 ? body : [EMPTY];
}

/** MDP/0.1 REPLY to a client: `['', MDPC01, service, body…]`. */
export function encodeClientReplyV1(service: string, body: Buffer[]): Buffer[] {
  return [EMPTY, HEADER_FRAMES.c1, Buffer.from(service), ...nonEmptyBody(body)];
}

/** MDP/0.2 PARTIAL or FINAL to a client: `[MDPC02, 0x02|0x03, service, body…]`. */
export function encodeClientV2(
  kind: 'PARTIAL' | 'FINAL',
  service: string,
  body: Buffer[],
): Buffer[] {
  const cmd = kind === 'PARTIAL' ? MDPC02_PARTIAL : MDPC02_FINAL;
  return [HEADER_FRAMES.c2, byte(cmd), Buffer.from(service), ...nonEmptyBody(body)];
}

/** REQUEST to a worker: `[…header, 0x02, address, '', body…]`. */
export function encodeWorkerRequest(
  version: MdpVersion,
  address: Buffer,
  body: Buffer[],
): Buffer[] {
  return version === 1
    ? [EMPTY, HEADER_FRAMES.w1, byte(MDPW01_REQUEST), address, EMPTY, ...nonEmptyBody(body)]
    : [HEADER_FRAMES.w2, byte(MDPW02_REQUEST), address, EMPTY, ...nonEmptyBody(body)];
}

export function encodeWorkerHeartbeat(version: MdpVersion): Buffer[] {
  return version === 1
    ? [EMPTY, HEADER_FRAMES.w1, byte(MDPW01_HEARTBEAT)]
    : [HEADER_FRAMES.w2, byte(MDPW02_HEARTBEAT)];
}

export function encodeWorkerDisconnect(version: MdpVersion): Buffer[] {
  return version === 1
    ? [EMPTY, HEADER_FRAMES.w1, byte(MDPW01_DISCONNECT)]
    : [HEADER_FRAMES.w2, byte(MDPW02_DISCONNECT)];
}
