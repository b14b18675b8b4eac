// @ts-check
/**
 * Serves the "resize" service until Ctrl-C, two jobs at a time. After a broker restart the
 * worker registers again by itself; a job that was running is taken back by the broker and
 * runs again (its result report resolves 'lease-lost' instead of failing).
 */
import { connect } from 'ferrymq';

/** Stands in for the real work (set RESIZE_MS to change it). */
const RESIZE_MS = Number(process.env.RESIZE_MS ?? 200);
const ferry = await connect(process.env.FERRY_ENDPOINT ?? 'tcp://127.0.0.1:7400');
const worker = ferry.worker(
  'resize',
  async (job) => {
    const { width } = /** @type {{ width: number }} */ (JSON.parse(job.params.toString()));
    console.log('resizing', job.id, 'to', width, 'attempt', job.attempt);
    await job.progress({ step: 'resizing', width });
    await new Promise((resolve) => setTimeout(resolve, RESIZE_MS));
    return JSON.stringify({ width, bytes: width * 3 });
  },
  { concurrency: 2, onError: (err, job) => console.error('job', job.id, 'failed:', err) },
);
await worker.ready;
console.log('serving resize');
process.once('SIGINT', () => void ferry.close()); // lets running jobs finish, then leaves
process.once('SIGTERM', () => void ferry.close());
