// @ts-check
/**
 * Follows every sensor until Ctrl-C: the retained values first, then each update. Durable: the
 * broker stores what is published while this subscriber (or the broker) is down and delivers it
 * afterwards; acks never throw when a restart took the delivery back (it comes again).
 */
import { connect } from 'ferrymq';

const ferry = await connect(process.env.FERRY_ENDPOINT ?? 'tcp://127.0.0.1:7400');
process.once('SIGINT', () => void ferry.close()); // ends the loop below
process.once('SIGTERM', () => void ferry.close());

for await (const m of ferry.subscribe('sensors/**', { durable: 'dashboard', snapshot: true })) {
  console.log(m.snapshot ? 'retained' : 'update', m.topic, m.body.toString(), 'seq', m.seq);
  await m.ack();
}
