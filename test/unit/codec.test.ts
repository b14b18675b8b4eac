/** The FERRY01 codec: layouts, every malformation answered with a code, and a bounded fuzz. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FerryError } from 'ferrymq/model';
import fc from 'fast-check';
import {
  COMMANDS,
  COMMAND_ARGUMENTS,
  PROTOCOL_ID,
  ProtocolError,
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeRequest,
  joinMessages,
  splitMessages,
} from 'ferrymq/protocol';
import { fcOptions } from '../helpers/seed.js';

const B = (s: string): Buffer => Buffer.from(s);
const rid = Buffer.from([0, 0, 0, 7]);

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
    return err.code;
  }
  return 'no error';
}

describe('FERRY01 codec', () => {
  it('round-trips requests and replies', () => {
    for (const cmd of COMMANDS) {
      const args = Object.fromEntries(COMMAND_ARGUMENTS[cmd].map((k) => [k, 1]));
      const frames = encodeRequest(cmd, rid, args, [B('x'), Buffer.alloc(0)]);
      const req = decodeRequest(frames);
      assert.equal(req.command, cmd);
      assert.deepEqual(req.requestId, rid);
      assert.deepEqual(req.args, args);
      assert.equal(req.payload.length, 2);
    }
    const r = decodeReply(encodeReply('OK', rid, { ids: ['1'] }));
    assert.equal(r.kind, 'OK');
    assert.deepEqual(r.args, { ids: ['1'] });
    assert.deepEqual(decodeRequest([B(PROTOCOL_ID), B('PING'), rid, Buffer.alloc(0)]).args, {});
  });

  it('answers every malformation with a stable code and keeps the request id', () => {
    assert.equal(
      codeOf(() => decodeRequest([])),
      'BAD_FRAME',
    );
    assert.equal(
      codeOf(() => decodeRequest([B('HELLO')])),
      'BAD_FRAME',
    );
    assert.equal(
      codeOf(() => decodeRequest([B('FERRY99'), B('PING'), rid, B('{}')])),
      'UNSUPPORTED_VERSION',
    );
    assert.equal(
      codeOf(() => decodeRequest([B('FERRY01'), B('PING'), rid])),
      'BAD_FRAME',
    );
    assert.equal(
      codeOf(() => decodeRequest([B('FERRY01'), B('NOPE'), rid, B('{}')])),
      'UNKNOWN_COMMAND',
    );
    assert.equal(
      codeOf(() => decodeRequest([B('FERRY01'), B('SEND'), rid, B('{nope')])),
      'BAD_ARGUMENTS',
    );
    assert.equal(
      codeOf(() => decodeRequest([B('FERRY01'), B('SEND'), rid, B('[1,2]')])),
      'BAD_ARGUMENTS',
    );
    assert.equal(
      codeOf(() => decodeRequest([B('FERRY01'), B('SEND'), rid, B('"s"')])),
      'BAD_ARGUMENTS',
    );
    assert.equal(
      codeOf(() => decodeRequest([B('FERRY01'), B('PING'), Buffer.alloc(65), B('{}')])),
      'BAD_FRAME',
    );
    try {
      decodeRequest([B('FERRY01'), B('NOPE'), rid, B('{}')]);
    } catch (err) {
      assert.deepEqual((err as ProtocolError).requestId, rid, 'the error can answer the request');
    }
  });

  it('splits payloads by count or by spec, refusing mismatches', () => {
    const p = [B('a'), B('b1'), B('b2'), B('c')];
    assert.equal(splitMessages(4, p).length, 4);
    const split = splitMessages([{}, { frames: 2 }, { priority: 3 }], p);
    assert.deepEqual(split[1]!.frames.map(String), ['b1', 'b2']);
    assert.equal(split[2]!.spec.priority, 3);
    assert.equal(
      codeOf(() => splitMessages(3, p)),
      'BAD_FRAME',
    );
    assert.equal(
      codeOf(() => splitMessages([{ frames: 5 }], p)),
      'BAD_FRAME',
    );
    assert.equal(
      codeOf(() => splitMessages([{}, {}], p)),
      'BAD_FRAME',
    );
    assert.equal(
      codeOf(() => splitMessages([{ frames: 0 }], p)),
      'BAD_ARGUMENTS',
    );
    assert.equal(
      codeOf(() => splitMessages('x', p)),
      'BAD_ARGUMENTS',
    );
    assert.equal(
      codeOf(() => splitMessages([1, 2, 3, 4], p)),
      'BAD_ARGUMENTS',
    );
    assert.equal(
      codeOf(() => splitMessages([{ bogus: 1 }, {}, {}, {}], p, undefined, true)),
      'BAD_ARGUMENTS',
    );
    const joined = joinMessages([{ frames: [B('x'), B('y')] }, { frames: [B('z')] }], () => ({
      id: '1',
    }));
    assert.deepEqual(joined.specs, [
      { id: '1', frames: 2 },
      { id: '1', frames: 1 },
    ]);
    assert.equal(joined.payload.length, 3);
  });

  it('never throws anything but a coded ProtocolError on random input (fuzz, 20,000 cases)', () => {
    const piece = fc.oneof(
      fc.constant(PROTOCOL_ID),
      fc.constant('FERRY0'),
      fc.constantFrom(...COMMANDS),
      fc.constant('{"queue":"q","messages":2}'),
      fc.constant('{"messages":[{"frames":2}]}'),
      fc.constant('{'),
      fc.constant(''),
      fc.uint8Array({ maxLength: 79, size: 'max' }),
    );
    const frames = fc.array(
      piece.map((p) => Buffer.from(p)),
      { maxLength: 6 },
    );
    fc.assert(
      fc.property(frames, (frames) => {
        try {
          const req = decodeRequest(frames);
          if (req.command === 'SEND')
            splitMessages(req.args['messages'], req.payload, req.requestId, true);
        } catch (err) {
          assert.ok(err instanceof FerryError, String(err));
          assert.ok(
            ['BAD_FRAME', 'UNSUPPORTED_VERSION', 'UNKNOWN_COMMAND', 'BAD_ARGUMENTS'].includes(
              err.code,
            ),
          );
        }
      }),
      fcOptions(20_000),
    );
  });
});
