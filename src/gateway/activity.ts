// Which requests to a user's server a person made, for the hub's idle culler (idle means "no work", never "no
// traffic"). Opening or reloading a page, saving, running, creating and deleting are a person's doing; Jupyter's
// periodic polling (`GET api/contents`, `api/kernels`, `api/sessions`, `api/terminals`, kernel heartbeats),
// static files, and WebSockets that (re)connect on their own are not.

/** What the classifier reads from one request. */
export interface RequestFacts {
  readonly method: string;
  /** The path below the user's prefix, e.g. `api/contents/notebooks` for `/user/alice/api/contents/notebooks`. */
  readonly path: string;
  /** A WebSocket upgrade. */
  readonly upgrade: boolean;
  /** The `Sec-Fetch-Mode` header (browsers send `navigate` when a person opens or reloads a page). */
  readonly fetchMode: string | undefined;
  /** The `Accept` header. */
  readonly accept: string;
}

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * True when a person made this request.
 *
 * @example
 * isPersonRequest({ method: 'GET', path: 'api/contents', upgrade: false, fetchMode: 'cors', accept: '*\/*' });       // false
 * isPersonRequest({ method: 'GET', path: 'notebooks/a.ipynb', upgrade: false, fetchMode: 'navigate', accept: '' }); // true
 */
export function isPersonRequest(facts: RequestFacts): boolean {
  if (facts.upgrade) return false;
  if (!READS.has(facts.method)) return true;
  if (facts.method !== 'GET') return false;
  if (facts.fetchMode !== undefined) return facts.fetchMode === 'navigate';
  // Not a browser that says how it fetches: a page asked for as HTML, or a download, is still a person's.
  const path = facts.path.split('?', 1)[0] ?? '';
  if (path.startsWith('files/') || path.startsWith('nbconvert/')) return true;
  if (path.startsWith('api/') || path.startsWith('static/') || path.startsWith('custom/') || path.startsWith('nbextensions/')) return false;
  return facts.accept.includes('text/html');
}

/**
 * Collects the last person request per user and hands them out in batches, so a busy page costs one message a
 * second at most.
 *
 * @example
 * const seen = new PersonActivity();
 * seen.note('alice', Date.now());
 * link.reportActivity(seen.take()); // { alice: '2026-…Z' }
 */
export class PersonActivity {
  private readonly latest = new Map<string, number>();

  note(user: string, atMs: number): void {
    this.latest.set(user, atMs);
  }

  /** The users seen since the last call, with the time of their last request (ISO-8601); empties the batch. */
  take(): Record<string, string> | undefined {
    if (this.latest.size === 0) return undefined;
    const batch: Record<string, string> = {};
    for (const [user, at] of this.latest) batch[user] = new Date(at).toISOString();
    this.latest.clear();
    return batch;
  }
}
