/**
 * The seed's retryWithBackoff against the chaos server, with the official TypeScript SDK:
 * its bugs, shown by counting attempts in the server's log, then the fix.
 *
 * Nothing waits for real between attempts: the wrappers get a `sleep` that records the
 * delay, and the server's error replies carry `retry-after-ms: 1`, which the SDK obeys
 * instead of its own 0.5-8 s backoff.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';

import {
  isRetryable,
  retryWithBackoff,
  seedRetryWithBackoff,
  withoutSdkRetries,
  type RetryOptions,
} from '../src/retry.js';
import { projectModel, startChaos, type ChaosServer, type LogEntry } from './chaos.js';

const MODEL = projectModel();
const QUIET = { retry_after_ms: 1 }; // the SDK's own retries then wait 1 ms, not seconds
let chaos: ChaosServer;

before(async () => {
  chaos = await startChaos(['--profile', 'calm', '--seed', '0']);
});
after(async () => {
  await chaos?.stop();
});

/** A client of the chaos server (the SDK's default two retries unless told otherwise). */
function client(options: ConstructorParameters<typeof Anthropic>[0] = {}): Anthropic {
  return new Anthropic({ baseURL: chaos.url, apiKey: 'unused', ...options });
}

/** Options with a `sleep` that records each delay instead of waiting. */
function recorded(extra: RetryOptions = {}): RetryOptions & { delays: number[] } {
  const delays: number[] = [];
  return { ...extra, delays, sleep: async (ms) => void delays.push(ms) };
}

async function ask(sdk: Anthropic): Promise<string> {
  const message = await sdk.messages.create({
    model: MODEL,
    max_tokens: 64,
    messages: [{ role: 'user', content: 'Hi' }],
  });
  const [block] = message.content;
  return block?.type === 'text' ? block.text : '';
}

const retryCounts = (log: LogEntry[]) => log.map((entry) => entry.retry_count);

describe('the seed retries errors that are not API errors, blindly', () => {
  beforeEach(() => chaos.reset({ profile: 'calm', faults: {} }));

  // Your code asks for JSON and parses the reply; this reply is prose. A bug, not an outage.
  const askForJson = (sdk: Anthropic) => async () => JSON.parse(await ask(sdk)) as unknown;

  test('seed: a parse error is "retried" 5 times: 5 billed, successful API calls', async () => {
    const options = recorded();
    await assert.rejects(seedRetryWithBackoff(askForJson(client()), options), SyntaxError);
    const log = await chaos.log();
    assert.equal(log.length, 5);
    assert.ok(log.every((entry) => entry.status === 200 && entry.outcome === 'ok'));
    assert.equal(options.delays.length, 4); // 1 s, 2 s, 4 s, 8 s (+ jitter) of waiting for nothing
    assert.ok(options.delays[3]! >= 8000);
  });

  test('fix: the parse error is thrown at once, after one call', async () => {
    const options = recorded();
    await assert.rejects(retryWithBackoff(askForJson(withoutSdkRetries(client())), options),
      SyntaxError);
    assert.equal((await chaos.log()).length, 1);
    assert.deepEqual(options.delays, []);
  });

  test('seed and fix: a TypeError from a bug: 5 calls, then 1', async () => {
    const buggy = (sdk: Anthropic) => async () => {
      const message = await sdk.messages.create({
        model: MODEL,
        max_tokens: 64,
        messages: [{ role: 'user', content: 'Hi' }],
      });
      const second = message.content[1] as Anthropic.TextBlock; // assumes a second block
      return second.text.trim();
    };
    await assert.rejects(seedRetryWithBackoff(buggy(client()), recorded()), TypeError);
    assert.equal((await chaos.log()).length, 5);
    await chaos.reset();
    await assert.rejects(retryWithBackoff(buggy(withoutSdkRetries(client())), recorded()),
      TypeError);
    assert.equal((await chaos.log()).length, 1);
  });
});

describe('the seed stacks on the SDK\'s own retries', () => {
  beforeEach(() => chaos.reset({ profile: 'calm', faults: { overloaded_error: 1 }, ...QUIET }));

  test('seed: one call during a 529 storm sends 5 x 3 = 15 requests', async () => {
    const sdk = client(); // maxRetries: 2, the SDK's default
    await assert.rejects(seedRetryWithBackoff(() => ask(sdk), recorded()), Anthropic.OverloadedError);
    const log = await chaos.log();
    assert.equal(log.length, 15);
    assert.deepEqual(retryCounts(log), [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
  });

  test('fix: the SDK\'s retries off, one layer: exactly the attempts you asked for', async () => {
    const options = recorded({ maxRetries: 4 });
    await assert.rejects(retryWithBackoff(() => ask(withoutSdkRetries(client())), options),
      Anthropic.OverloadedError);
    const log = await chaos.log();
    assert.deepEqual(retryCounts(log), [0, 0, 0, 0]);
    assert.equal(options.delays.length, 3);
    options.delays.forEach((delay, n) => assert.ok(delay <= 500 * 2 ** n, `delay ${n}: ${delay}`));
  });
});

describe('the seed\'s hand-written status list', () => {
  test('seed: a 504 is not in its list: given up at once; the fix retries it', async () => {
    await chaos.reset({ profile: 'calm', faults: { timeout_error: 1 }, ...QUIET });
    const sdk = withoutSdkRetries(client());
    await assert.rejects(seedRetryWithBackoff(() => ask(sdk), recorded()),
      Anthropic.GatewayTimeoutError);
    assert.equal((await chaos.log()).length, 1);
    await chaos.reset();
    await assert.rejects(retryWithBackoff(() => ask(sdk), recorded()),
      Anthropic.GatewayTimeoutError);
    assert.equal((await chaos.log()).length, 4);
  });

  test('seed: a connection error has no status: given up at once; the fix retries it', async () => {
    await chaos.reset({ profile: 'calm', faults: { connection_error: 1 }, ...QUIET });
    const sdk = withoutSdkRetries(client());
    await assert.rejects(seedRetryWithBackoff(() => ask(sdk), recorded()),
      Anthropic.APIConnectionError);
    assert.equal((await chaos.log()).length, 1);
    await chaos.reset();
    await assert.rejects(retryWithBackoff(() => ask(sdk), recorded()),
      Anthropic.APIConnectionError);
    assert.equal((await chaos.log()).length, 4);
  });

  test('fix: a 401 needs a fix, not a retry: thrown after one request', async () => {
    await chaos.reset({ profile: 'calm', faults: { authentication_error: 1 } });
    await assert.rejects(retryWithBackoff(() => ask(withoutSdkRetries(client())), recorded()),
      Anthropic.AuthenticationError);
    assert.equal((await chaos.log()).length, 1);
  });

  test('fix: retry-after is a floor; the seed ignores it', async () => {
    await chaos.reset({ profile: 'calm', faults: { rate_limit_error: 1 } }); // retry-after: 5
    const sdk = withoutSdkRetries(client());
    const fixed = recorded({ maxRetries: 2 });
    await assert.rejects(retryWithBackoff(() => ask(sdk), fixed), Anthropic.RateLimitError);
    assert.deepEqual(fixed.delays, [5000]);
    const seed = recorded({ maxRetries: 2 });
    await assert.rejects(seedRetryWithBackoff(() => ask(sdk), seed), Anthropic.RateLimitError);
    assert.ok(seed.delays[0]! < 2000, `the seed waited ${seed.delays[0]} ms, not 5 s`);
  });
});

describe('a connection dropped mid-body', () => {
  test('reaches you from the TS SDK as a TypeError, unretried; the fix retries it', async () => {
    await chaos.reset({ profile: 'calm', faults: { stream_dropped: 0.5 }, seed: 4, ...QUIET });
    const sdk = client(); // even with the SDK's own retries on
    const failures: unknown[] = [];
    for (let i = 0; i < 6; i++) await ask(sdk).catch((error: unknown) => failures.push(error));
    assert.ok(failures.length > 0);
    for (const error of failures) {
      assert.ok(!(error instanceof Anthropic.APIError), 'not an APIError');
      assert.ok(error instanceof TypeError && isRetryable(error));
    }
    await chaos.reset();
    const fixed = withoutSdkRetries(client());
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await retryWithBackoff(() => ask(fixed), recorded()));
    assert.equal(answers.length, 6);
  });
});

describe('the fix on a bad day', () => {
  test('every call returns or fails with a retryable error after its attempts; all logged', async () => {
    await chaos.reset({ profile: 'bad-day', seed: 11, ...QUIET });
    const sdk = withoutSdkRetries(client({ timeout: 1000 })); // a hung request costs 1 s
    let attempts = 0;
    let answered = 0;
    for (let i = 0; i < 25; i++) {
      const options = recorded({ maxRetries: 4, onRetry: () => void attempts++ });
      attempts++;
      try {
        await retryWithBackoff(() => ask(sdk), options);
        answered++;
      } catch (error) {
        assert.ok(isRetryable(error), `gave up on a non-retryable error: ${error}`);
        assert.equal(options.delays.length, 3, 'gave up with attempts left');
      }
    }
    const log = await chaos.log();
    assert.equal(log.length, attempts, 'the attempts counted are the attempts the server saw');
    assert.ok(log.some((entry) => entry.outcome !== 'ok'), 'a bad day has faults');
    assert.ok(answered >= 23, `only ${answered} of 25 calls answered`);
  });
});
