/**
 * Services the broker answers itself on the Majordomo endpoint (8/MMI, 9/TSP Titanic):
 * they look like ordinary MDP services to clients, but no worker serves them.
 */
export interface InternalServices {
  /** True when requests for `service` are answered here (the name is reserved). */
  owns(service: string): boolean;
  /** True when `service` is one this provider serves now (for `mmi.service`). */
  provides(service: string): boolean;
  /** Answers one request; resolves with the reply body. Never rejects. */
  answer(service: string, body: Buffer[]): Promise<Buffer[]>;
}
