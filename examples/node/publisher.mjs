// @ts-check
/**
 * Publishes a temperature reading every 100 ms (COUNT of them; default until Ctrl-C), retained:
 * a subscriber that joins later gets the last value first. Publishes made while the broker
 * restarts wait and go out when it is back.
 */
import { connect } from 'ferrymq';

const PUBLISH_INTERVAL_MS = 100;
const ferry = await connect(process.env.FERRY_ENDPOINT ?? 'tcp://127.0.0.1:7400');
const count = Number(process.env.COUNT ?? Infinity);
let stopping = false;
process.once('SIGINT', () => (stopping = true));
process.once('SIGTERM', () => (stopping = true));

for (let i = 1; i <= count && !stopping; i++) {
  const celsius = (20 + Math.sin(i / 10)).toFixed(2);
  const seq = await ferry.publish('sensors/hall/temp', celsius, { retain: true });
  console.log('published', i, celsius, 'seq', seq);
  await new Promise((resolve) => setTimeout(resolve, PUBLISH_INTERVAL_MS));
}
await ferry.close();
