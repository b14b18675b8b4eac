// @ts-check
/**
 * Runs jobs on the "resize" service (start worker.mjs first). submit() resolves once the job is
 * stored and result() follows it to the end — both across a broker restart. call() is the
 * one-request form, for jobs short enough to retry if the broker stops mid-call.
 */
import { connect, FerryError } from 'ferrymq';

const ferry = await connect(process.env.FERRY_ENDPOINT ?? 'tcp://127.0.0.1:7400');
const count = Number(process.env.COUNT ?? 3);

for (let i = 1; i <= count; i++) {
  const job = await ferry.submit('resize', JSON.stringify({ width: 100 * i }));
  const [result] = await job.result({ timeoutMs: 60_000 }); // JOB_FAILED etc. if it did not succeed
  console.log('job', job.id, 'result', String(result));
}

try {
  const result = await ferry.call('resize', JSON.stringify({ width: 64 }), { timeoutMs: 10_000 });
  console.log('call result', result.toString());
} catch (err) {
  // TIMEOUT (no worker in time), JOB_FAILED (err.details.job has the job's error), …
  if (!(err instanceof FerryError)) throw err;
  console.error('call failed:', err.code, err.message);
  process.exitCode = 1;
}
await ferry.close();
