// @ts-check
/**
 * Consumes "emails" until Ctrl-C. A failed message is nacked (retried with backoff, then
 * dead-lettered); settling never throws when the lease is gone after a broker restart — the
 * message simply comes again — so the loop keeps going across restarts.
 */
import { connect } from 'ferrymq';

const ferry = await connect(process.env.FERRY_ENDPOINT ?? 'tcp://127.0.0.1:7400');
process.once('SIGINT', () => void ferry.close()); // ends the loop below
process.once('SIGTERM', () => void ferry.close());

/** @param {{ to?: string }} email */
async function deliver(email) {
  if (!email.to) throw new Error('no recipient');
}

for await (const msg of ferry.consume('emails', { prefetch: 10 })) {
  try {
    await deliver(/** @type {{ to?: string }} */ (JSON.parse(msg.body.toString())));
  } catch (err) {
    console.error('failed, will retry:', msg.id, err);
    await msg.nack();
    continue;
  }
  const outcome = await msg.ack(); // 'acked', or 'lease-lost' (redelivered after a restart)
  console.log(outcome, msg.id, msg.body.toString());
}
