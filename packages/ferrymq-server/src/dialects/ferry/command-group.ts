/** What the groups of FERRY01 commands beside the core queue commands share: answering. */
import { toFerryError } from 'ferrymq/model';
import { encodeError, encodeReply, type Json } from 'ferrymq/protocol';

/** Sends frames to one peer. */
export type PeerSend = (peer: Buffer, frames: Buffer[]) => void;

export abstract class CommandGroup {
  constructor(protected readonly sendTo: PeerSend) {}

  protected ok(peer: Buffer, requestId: Buffer, args: Json = {}, payload?: Buffer[]): void {
    this.sendTo(peer, encodeReply('OK', requestId, args, payload));
  }

  protected fail(peer: Buffer, requestId: Buffer, err: unknown): void {
    const e = toFerryError(err);
    this.sendTo(peer, encodeError(requestId, e.code, e.message));
  }

  /**
   * A quiet report (`"quiet": true`): nothing is sent when `work` succeeds; a failure is
   * answered ERROR with its code, as always.
   */
  protected answerErrors(peer: Buffer, requestId: Buffer, work: Promise<unknown>): void {
    work.catch((err: unknown) => this.fail(peer, requestId, err));
  }

  /** Answers OK with what `work` resolves to, or ERROR with its code. */
  protected answer(peer: Buffer, requestId: Buffer, work: Promise<Json>): void {
    work.then(
      (args) => this.ok(peer, requestId, args),
      (err: unknown) => this.fail(peer, requestId, err),
    );
  }
}
