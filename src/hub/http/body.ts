// Reads and validates a JSON request body at the boundary; errors name the field at fault.
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { z } from 'zod';
import { BadRequestError } from '../errors.js';

/**
 * Parses the JSON body (an empty body counts as `{}`) with a strict zod schema.
 *
 * @example
 * const body = await readJson(c, z.strictObject({ admin: z.boolean().optional() }));
 */
export async function readJson<T extends z.ZodType>(c: Context, schema: T): Promise<z.output<T>> {
  const text = await c.req.text();
  let raw: unknown = {};
  if (text.trim() !== '') {
    try {
      raw = JSON.parse(text);
    } catch {
      throw new BadRequestError('the request body is not valid JSON');
    }
  }
  return validated(schema, raw);
}

/**
 * Validates the query string with a zod schema (values arrive as strings: use `z.coerce`); 400 naming the field.
 *
 * @example
 * const { limit } = readQuery(c, z.object({ limit: z.coerce.number().int().max(1000).default(100) }));
 */
export function readQuery<T extends z.ZodType>(c: Context, schema: T): z.output<T> {
  return validated(schema, c.req.query());
}

function validated<T extends z.ZodType>(schema: T, raw: unknown): z.output<T> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (!issue) throw new BadRequestError('invalid request body');
  if (issue.code === 'unrecognized_keys') {
    throw new BadRequestError(`unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')}`, issue.keys[0]);
  }
  const field = issue.path.join('.');
  throw new BadRequestError(field ? `${field}: ${issue.message}` : issue.message, field || undefined);
}

/** Most bytes of a refused body read and dropped so that the client gets its 413 (closing early resets the connection). */
const DRAIN_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * Refuses request bodies over `maxBytes()` with 413 `{status, message}`: at once when `Content-Length` says so
 * (after reading and dropping what the client sends, up to 64 MiB, so it receives the answer instead of a reset),
 * else as soon as a streamed body passes the limit.
 *
 * @example
 * app.use('/hub/*', limitBody(() => 1024 * 1024));
 */
export function limitBody(maxBytes: () => number): MiddlewareHandler {
  let limiter: MiddlewareHandler | undefined;
  return async (c, next) => {
    const maxSize = maxBytes();
    const tooLarge = (ctx: Context) =>
      ctx.json({ status: 413, message: `the request body is larger than ${maxSize} bytes (pool.yaml hub.maxBodySize)` }, 413, { connection: 'close' });
    const length = Number(c.req.header('content-length') ?? 0);
    const body = c.req.raw.body;
    if (body !== null && length > maxSize) {
      await drain(body, DRAIN_LIMIT_BYTES);
      return tooLarge(c);
    }
    limiter ??= bodyLimit({ maxSize, onError: tooLarge });
    return limiter(c, next);
  };
}

async function drain(body: ReadableStream<Uint8Array>, limitBytes: number): Promise<void> {
  const reader = body.getReader();
  let seen = 0;
  try {
    while (seen < limitBytes) {
      const { done, value } = await reader.read();
      if (done) return;
      seen += value.byteLength;
    }
  } catch {
    // The client gave up: nothing to answer.
  } finally {
    void reader.cancel().catch(() => undefined);
  }
}
