/**
 * 8/MMI, the Majordomo Management Interface: every service whose name starts with `mmi.` is
 * answered by the broker. `mmi.service` replies `200` when the service named in the body has
 * a worker (or is built in), `404` when not; any other `mmi.*` service replies `501`.
 */
import type { InternalServices } from './internal-services.js';

export const MMI_PREFIX = 'mmi.';
const MMI_SERVICE = 'mmi.service';

const MMI_OK = '200';
const MMI_NOT_FOUND = '404';
const MMI_NOT_IMPLEMENTED = '501';

export class MmiServices implements InternalServices {
  /** @param isServed true when a service has a worker or is answered by the broker. */
  constructor(private readonly isServed: (service: string) => boolean) {}

  owns(service: string): boolean {
    return service.startsWith(MMI_PREFIX);
  }

  provides(service: string): boolean {
    return service === MMI_SERVICE;
  }

  answer(service: string, body: Buffer[]): Promise<Buffer[]> {
    if (service !== MMI_SERVICE) return Promise.resolve([Buffer.from(MMI_NOT_IMPLEMENTED)]);
    const name = body[0]?.toString('utf8') ?? '';
    const found = name !== '' && this.isServed(name);
    return Promise.resolve([Buffer.from(found ? MMI_OK : MMI_NOT_FOUND)]);
  }
}
