/** Which bind addresses count as loopback for the INSECURE_BIND check (docs/security.md). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLoopback } from 'ferrymq-server/internal/server/security-component.js';

describe('loopback addresses', () => {
  it('tells loopback endpoints from the rest', () => {
    for (const a of [
      'tcp://127.0.0.1:7400',
      'tcp://127.1.2.3:*',
      'tcp://[::1]:7400',
      'tcp://localhost:1',
      '127.0.0.1:7480',
      'ipc:///tmp/x',
      'inproc://x',
    ])
      assert.ok(isLoopback(a), a);
    for (const a of [
      'tcp://0.0.0.0:7400',
      'tcp://*:7400',
      'tcp://10.0.0.1:1',
      '0.0.0.0:7480',
      'tcp://eth0:1',
    ])
      assert.ok(!isLoopback(a), a);
  });
});
