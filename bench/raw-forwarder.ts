/**
 * A ceiling for W3: the same topology with no broker logic. Run as a child process
 * (`node raw-forwarder.js`), it binds a ROUTER on tcp://127.0.0.1:*, prints its endpoint on
 * stdout, and forwards: a peer that sends ["W"] is the worker; ["C", body…] from a client goes
 * to the worker as ["J", client id, body…]; ["R", client id, body…] from the worker goes back
 * to that client as ["OK", body…]. Exits when stdin closes (its parent went away).
 */
import * as zmq from 'zeromq';

const router = new zmq.Router();
await router.bind('tcp://127.0.0.1:*');
process.stdout.write(`${router.lastEndpoint}\n`);
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();

let worker: Buffer | undefined;
const JOB = Buffer.from('J');
const OK = Buffer.from('OK');
for await (const [peer, kind, ...rest] of router) {
  if (!peer || !kind) continue;
  const k = kind.toString();
  if (k === 'W') worker = peer;
  else if (k === 'C' && worker) await router.send([worker, JOB, peer, ...rest]);
  else if (k === 'R' && rest[0]) await router.send([rest[0], OK, ...rest.slice(1)]);
}
