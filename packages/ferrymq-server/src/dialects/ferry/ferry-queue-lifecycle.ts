/**
 * The queue life-cycle commands of FERRY01 (docs/protocol.md §4): QUEUE_DELETE, QUEUE_PAUSE,
 * QUEUE_RESUME and QUEUE_POLICY, mapped onto the broker; and the CANCELLED message that tells
 * a consumer its queue was deleted.
 */
import type { Broker } from '../../core/broker.js';
import { FerryError } from 'ferrymq/model';
import { encodeReply, type Json, type Request } from 'ferrymq/protocol';
import { optBool, reqString } from './args.js';
import { CommandGroup } from './command-group.js';

export class FerryQueueLifecycleCommands extends CommandGroup {
  constructor(
    private readonly broker: Broker,
    sendTo: (peer: Buffer, frames: Buffer[]) => void,
    private readonly replyError: (peer: Buffer, requestId: Buffer, err: unknown) => void,
  ) {
    super(sendTo);
  }

  /** Errors go through the dialect, which counts them. */
  protected override fail(peer: Buffer, requestId: Buffer, err: unknown): void {
    this.replyError(peer, requestId, err);
  }

  /** Tells a consumer the broker ended it (its queue was deleted). */
  cancelled(peerId: Buffer, tag: string, reason: FerryError): void {
    this.sendTo(
      peerId,
      encodeReply('CANCELLED', Buffer.alloc(0), {
        consumer: tag,
        code: reason.code,
        message: reason.message,
      }),
    );
  }

  /** Handles one life-cycle command; throws FerryError for bad arguments. */
  handle(peerId: Buffer, req: Request): void {
    const { args, requestId } = req;
    const queue = reqString(args, 'queue');
    switch (req.command) {
      case 'QUEUE_DELETE': {
        const force = optBool(args, 'force') ?? false;
        this.answer(peerId, requestId, this.remove(queue, force));
        return;
      }
      case 'QUEUE_PAUSE':
        this.answer(
          peerId,
          requestId,
          this.broker.pauseQueue(queue).then(() => ({ queue, paused: true })),
        );
        return;
      case 'QUEUE_RESUME':
        this.answer(
          peerId,
          requestId,
          this.broker.resumeQueue(queue).then(() => ({ queue, paused: false })),
        );
        return;
      case 'QUEUE_POLICY': {
        const policy = args['policy'];
        if (
          policy !== undefined &&
          (typeof policy !== 'object' || policy === null || Array.isArray(policy))
        ) {
          throw new FerryError(
            'INVALID_POLICY',
            'policy must be an object of key → integer or null',
          );
        }
        const reset = optBool(args, 'reset');
        const work =
          policy === undefined && reset === undefined
            ? Promise.resolve(this.broker.queuePolicy(queue))
            : this.broker.setQueuePolicy(queue, policy, { reset });
        this.answer(
          peerId,
          requestId,
          work.then((info) => ({ ...info })),
        );
        return;
      }
      default:
        throw new FerryError('UNKNOWN_COMMAND', `${req.command} is not a queue life-cycle command`);
    }
  }

  private async remove(queue: string, force: boolean): Promise<Json> {
    const out = await this.broker.deleteQueue(queue, { force });
    return { deleted: queue, messages: out.messages };
  }
}
