/**
 * A raw ZMWS 1.0 worker for tests, written from the frame tables (research/protocols.md
 * §2.3, §2.5): a DEALER that says `<service>, READY`, heartbeats, and answers each
 * `JOB: <id>` with `[PARAM-JSON: …], <service>, COMPLETE: <id>`. No ZMWS library.
 */
import { RawSocket, texts } from './zmq-inbox.js';

export interface RawZmwsWorkerOptions {
  /** How often it sends HEARTBEAT, ms (ZMWS: 5,000). */
  heartbeatMs: number;
  /** The result value (JSON) for a job's parameter value (the text after `PARAM-JSON: `). */
  handler?: (param: string, jobId: string) => string;
  /** Partials (JSON values) sent as CONT before the result. */
  partials?: (param: string) => string[];
  /** Do not answer jobs (to test what happens to a worker that goes silent). */
  hang?: boolean;
}

export class RawZmwsWorker {
  readonly sock: RawSocket;
  served = 0;
  heartbeatsReceived = 0;
  readonly jobs: string[][] = [];
  private beating: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    endpoint: string,
    readonly service: string,
    private readonly options: RawZmwsWorkerOptions,
    identity: string,
  ) {
    this.sock = RawSocket.dealer(endpoint, identity);
    void this.sock.send(service, 'READY');
    this.beating = setInterval(() => void this.sock.send('HEARTBEAT'), options.heartbeatMs);
    void this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const m = await this.sock.tryReceive(100);
      if (!m) continue;
      const t = texts(m);
      if (t.length === 1 && t[0] === 'HEARTBEAT') {
        this.heartbeatsReceived++;
        continue;
      }
      this.jobs.push(t);
      if (this.options.hang) {
        this.silence();
        continue;
      }
      const jobId = (t[3] ?? '').replace(/^JOB: /, '');
      const paramFrame = t[2] ?? '';
      const param = paramFrame.includes(': ') ? paramFrame.slice(paramFrame.indexOf(': ') + 2) : '';
      for (const p of this.options.partials?.(param) ?? []) {
        await this.sock.send(`PARAM-JSON: ${p}`, this.service, `CONT: ${jobId}`);
      }
      const result = this.options.handler?.(param, jobId);
      if (result === undefined) await this.sock.send(this.service, `COMPLETE: ${jobId}`);
      else await this.sock.send(`PARAM-JSON: ${result}`, this.service, `COMPLETE: ${jobId}`);
      this.served++;
    }
  }

  /** Stops heartbeating (the process hangs, as far as the broker can tell). */
  silence(): void {
    clearInterval(this.beating);
  }

  close(): void {
    this.stopped = true;
    clearInterval(this.beating);
    this.sock.close();
  }
}
