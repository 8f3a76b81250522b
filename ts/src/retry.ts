/**
 * The seed article's `retryWithBackoff`, written as idiomatic TypeScript with its behaviour
 * kept (bugs included), and the fix.
 *
 * The seed's version has three bugs that the tests in `test/` show against the chaos server:
 *
 * 1. It retries errors that are not API errors, blindly: a `SyntaxError` from your own
 *    parsing of a good reply, a `TypeError` from a bug, are "retried" five times, and each
 *    retry is a new, billed, successful API call.
 * 2. It stacks on the SDK's own retries: the SDK already retries each call twice
 *    (`maxRetries: 2`), so five attempts of the wrapper are up to 5 x 3 = 15 HTTP requests.
 * 3. Its hand-written list of statuses (429, 500, 502, 503, 529) misses 408, 409 and 504,
 *    and an `APIConnectionError` (whose `status` is undefined) is never retried, while it
 *    ignores the server's `retry-after`.
 *
 * The fix, {@link retryWithBackoff}: retry only what is transient (connection errors and
 * timeouts, a connection dropped mid-body; 408, 409, 429 and 5xx, unless `x-should-retry`
 * says otherwise or a 429 is a spend limit), with full jitter, `retry-after` as a floor, a
 * bounded number of attempts, and a client built with `maxRetries: 0`
 * ({@link withoutSdkRetries}) so that one layer retries, not two.
 *
 * A fact about the TypeScript SDK worth knowing (seen against the chaos server): a
 * connection that drops while the body is read is *not* an `APIError`. The SDK reads the
 * body after its retry loop, so undici's `TypeError: terminated` (cause: a `SocketError`,
 * code `UND_ERR_SOCKET`) reaches you unwrapped and unretried, for a plain call as for a
 * stream. The fix recognises it by that code, not by "any error".
 *
 * Time is a parameter: both take a `sleep` (default: a real timer), so tests record the
 * schedule instead of waiting for it.
 */
import Anthropic from '@anthropic-ai/sdk';

/** Waits `ms` milliseconds. */
export type Sleep = (ms: number) => Promise<void>;

/** One retry about to happen: which attempt failed, with what, and the wait before the next. */
export interface RetryEvent {
  /** The attempt that failed, from 1. */
  attempt: number;
  /** How long the wrapper waits before the next attempt, in milliseconds. */
  delayMs: number;
  /** What the failed attempt threw. */
  error: unknown;
}

export interface RetryOptions {
  /** Attempts in all (the seed calls it `maxRetries`, but it counts attempts). */
  maxRetries?: number;
  /** The first delay, in milliseconds. */
  baseDelayMs?: number;
  /** The longest delay, in milliseconds. */
  maxDelayMs?: number;
  /** How to wait (default: a real timer). */
  sleep?: Sleep;
  /** A uniform random number in [0, 1) (default: `Math.random`). */
  random?: () => number;
  /** Called before each wait (the seed logs "Attempt n failed. Retrying in d ms..."). */
  onRetry?: (event: RetryEvent) => void;
}

/** A real timer. */
export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The statuses the seed retries, by a hand-written list. */
export const SEED_RETRY_STATUSES: readonly number[] = [429, 500, 502, 503, 529];

/**
 * The seed's `retryWithBackoff`, faithfully: up to `maxRetries` attempts (default 5), a
 * delay of `min(baseDelayMs * 2^attempt + random * 1000, maxDelayMs)` (default 1 s
 * doubling, capped at 60 s) between them. An `Anthropic.APIError` whose status is not in
 * {@link SEED_RETRY_STATUSES} is thrown at once; **any other error is retried**.
 */
export async function seedRetryWithBackoff<T>(
  fn: () => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const {
    maxRetries = 5,
    baseDelayMs = 1000,
    maxDelayMs = 60_000,
    sleep = realSleep,
    random = Math.random,
    onRetry,
  } = options;
  for (let attempt = 0; attempt < maxRetries; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt === maxRetries - 1) throw error;
      if (error instanceof Anthropic.APIError) {
        const status = error.status;
        if (status === undefined || !SEED_RETRY_STATUSES.includes(status)) throw error;
      }
      const delayMs = Math.min(baseDelayMs * 2 ** attempt + random() * 1000, maxDelayMs);
      onRetry?.({ attempt: attempt + 1, delayMs, error });
      await sleep(delayMs);
    }
  }
  throw new Error('Max retries exceeded');
}

/** The spend-limit error codes: a 429 with one of these is not lifted by waiting. */
const SPEND_LIMIT_CODES = new Set([
  'enforced_spend_limit_reached',
  'contract_spend_limit_reached',
  'linked_organization_spend_limit_reached',
]);

/**
 * Whether sending the same request again can succeed.
 *
 * Retryable: a connection error or timeout (`APIConnectionError`, including
 * `APIConnectionTimeoutError`, but not the caller's own abort), a connection dropped while
 * the body was read ({@link isDroppedConnection}), and an API error with
 * status 408, 409, 429 or >= 500, unless the server says `x-should-retry: false` or the
 * 429 is a spend limit. Everything else is not: 4xx errors that need a fix, and every
 * error that is not an API error at all (a bug, a parse error, an abort).
 */
export function isRetryable(error: unknown): boolean {
  if (error instanceof Anthropic.APIUserAbortError) return false;
  if (error instanceof Anthropic.APIConnectionError) return true;
  if (isDroppedConnection(error)) return true;
  if (!(error instanceof Anthropic.APIError) || error.status === undefined) return false;
  const verdict = error.headers?.get('x-should-retry');
  if (verdict === 'true') return true;
  if (verdict === 'false') return false;
  const { status } = error;
  if (status === 429) return !SPEND_LIMIT_CODES.has(errorCode(error) ?? '');
  return status === 408 || status === 409 || status >= 500;
}

/** Socket error codes of a connection that failed under a request (undici's and Node's). */
const NETWORK_CODES = new Set([
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
]);

/**
 * Whether `error`, or an error it was caused by, is a socket failure (by its `code`):
 * how a connection dropped mid-body reaches you from the TypeScript SDK.
 */
export function isDroppedConnection(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
    current = current.cause;
  }
  return false;
}

function errorCode(error: InstanceType<typeof Anthropic.APIError>): string | undefined {
  const body = error.error as { error?: { details?: { error_code?: unknown } } } | undefined;
  const code = body?.error?.details?.error_code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The wait the server asks for, in milliseconds: `retry-after-ms`, else `retry-after`
 * (seconds or an HTTP date); undefined when it asks for none.
 */
export function retryAfterMs(error: unknown, now: () => number = Date.now): number | undefined {
  if (!(error instanceof Anthropic.APIError) || !error.headers) return undefined;
  const ms = Number.parseFloat(error.headers.get('retry-after-ms') ?? '');
  if (ms > 0) return ms;
  const header = error.headers.get('retry-after');
  if (header === null) return undefined;
  const seconds = Number.parseFloat(header);
  if (seconds > 0) return seconds * 1000;
  const date = Date.parse(header) - now();
  return date > 0 ? date : undefined;
}

/**
 * The fix: retry only retryable errors ({@link isRetryable}), at most `maxRetries`
 * attempts in all (default 4), waiting a full-jitter delay
 * `random * min(maxDelayMs, baseDelayMs * 2^(attempt - 1))` (default 0.5 s doubling,
 * capped at 8 s) or the server's `retry-after`, whichever is longer. Anything else is
 * thrown at once, as it is. Use it with a client from {@link withoutSdkRetries}.
 */
export async function retryWithBackoff<T>(
  fn: () => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const {
    maxRetries = 4,
    baseDelayMs = 500,
    maxDelayMs = 8000,
    sleep = realSleep,
    random = Math.random,
    onRetry,
  } = options;
  if (!Number.isInteger(maxRetries) || maxRetries < 1) {
    throw new RangeError(`maxRetries must be an integer >= 1 (attempts in all), got ${maxRetries}`);
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= maxRetries || !isRetryable(error)) throw error;
      const backoff = random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
      const delayMs = Math.max(backoff, retryAfterMs(error) ?? 0);
      onRetry?.({ attempt, delayMs, error });
      await sleep(delayMs);
    }
  }
}

/** The same client with the SDK's own retries off, so {@link retryWithBackoff} is the only layer. */
export function withoutSdkRetries(client: Anthropic): Anthropic {
  return client.withOptions({ maxRetries: 0 });
}
