/** Topic names and patterns: exact, prefix and wildcard matching, and refusals. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FerryError, isValidQueueName } from 'ferrymq/model';
import {
  checkTopic,
  matches,
  parsePattern,
  scanPrefix,
} from 'ferrymq-server/internal/core/topics.js';

function m(pattern: string, topic: string): boolean {
  return matches(parsePattern(pattern), topic);
}

describe('topic patterns', () => {
  it('refuses . and .. as a topic, a segment or a pattern segment; names with dots stay valid', () => {
    const refused = (f: () => unknown) =>
      assert.throws(f, (e: unknown) => e instanceof FerryError && e.code === 'INVALID_TOPIC');
    for (const t of ['.', '..', 'a/../b', 'a/.', './a', 'a/./b']) {
      refused(() => checkTopic(t));
      refused(() => parsePattern(t));
    }
    refused(() => parsePattern('../**'));
    refused(() => parsePattern('a/*/..'));
    assert.equal(checkTopic('a/.../b.c'), 'a/.../b.c');
    assert.ok(m('v1.2/**', 'v1.2/x'));
    // Queue and service names: the model's one check.
    for (const n of ['.', '..']) assert.ok(!isValidQueueName(n), n);
    for (const n of ['...', '.a', 'a..b', 'a.']) assert.ok(isValidQueueName(n), n);
  });

  it('exact names match only themselves', () => {
    assert.ok(m('config/db/primary', 'config/db/primary'));
    assert.ok(!m('config/db/primary', 'config/db/primary/x'));
    assert.ok(!m('config/db', 'config/db/primary'));
  });

  it('a trailing / is a prefix', () => {
    assert.ok(m('config/', 'config/db/primary'));
    assert.ok(m('config/', 'config/x'));
    assert.ok(!m('config/', 'configx/a'));
    assert.ok(!m('config/', 'config'));
  });

  it('* is one segment, ** is any number of segments', () => {
    assert.ok(m('config/*/primary', 'config/db/primary'));
    assert.ok(!m('config/*/primary', 'config/db/x/primary'));
    assert.ok(!m('config/*/primary', 'config/primary'));
    assert.ok(m('config/**', 'config/db/primary'));
    assert.ok(m('config/**', 'config'));
    assert.ok(m('**', 'anything/at/all'));
    assert.ok(m('config/**/primary', 'config/a/b/c/primary'));
    assert.ok(m('config/**/primary', 'config/primary'));
    assert.ok(!m('config/**/primary', 'config/a/replica'));
    assert.ok(m('*/db/*', 'config/db/primary'));
  });

  it('narrows a scan to the literal start', () => {
    assert.equal(scanPrefix(parsePattern('config/*/primary')), 'config/');
    assert.equal(scanPrefix(parsePattern('**')), '');
    assert.equal(scanPrefix(parsePattern('a/b')), 'a/b');
    assert.equal(scanPrefix(parsePattern('a/')), 'a/');
  });

  it('refuses bad topics and patterns with INVALID_TOPIC', () => {
    const bad = (f: () => unknown): void =>
      assert.throws(f, (e: unknown) => e instanceof FerryError && e.code === 'INVALID_TOPIC');
    bad(() => checkTopic(''));
    bad(() => checkTopic('a/*'));
    bad(() => checkTopic('a#'));
    bad(() => checkTopic('a\u0000b'));
    bad(() => checkTopic('x'.repeat(257)));
    bad(() => checkTopic(42));
    bad(() => parsePattern(''));
    bad(() => parsePattern('a/b*'));
    bad(() => parsePattern('**/a/**'));
    bad(() => parsePattern(null));
    assert.equal(checkTopic('config/db/primary'), 'config/db/primary');
  });
});
