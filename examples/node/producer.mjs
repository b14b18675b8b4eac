// @ts-check
/**
 * Sends a message every 100 ms (COUNT of them; default until Ctrl-C). Each resolves once the
 * broker has it on disk; while the broker restarts, sends wait and go out again when it is back,
 * stored once each (the SDK gives every request an idempotency key).
 */
import { connect } from 'ferrymq';

const SEND_INTERVAL_MS = 100;
const ferry = await connect(process.env.FERRY_ENDPOINT ?? 'tcp://127.0.0.1:7400');
const count = Number(process.env.COUNT ?? Infinity);
let stopping = false;
process.once('SIGINT', () => (stopping = true));
process.once('SIGTERM', () => (stopping = true));

for (let i = 1; i <= count && !stopping; i++) {
  const id = await ferry.send('emails', JSON.stringify({ to: `user${i}@example.com` }), {
    dedupKey: `welcome-${i}`, // a retry of this very email, even from another process, is stored once
  });
  console.log('sent', i, 'as', id);
  await new Promise((resolve) => setTimeout(resolve, SEND_INTERVAL_MS));
}
await ferry.close();
