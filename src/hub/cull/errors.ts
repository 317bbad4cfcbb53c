// Errors of the idle culler.
import { HubError } from '../errors.js';

/** Thrown by `Culler.extend` when the user has no running server to keep. */
export class NoServerToExtendError extends HubError {
  override name = 'NoServerToExtendError';
  constructor(readonly user: string) {
    super('conflict', `${user} has no running server to keep running`);
  }
}
