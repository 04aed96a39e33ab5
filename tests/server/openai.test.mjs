// openai.test.mjs - airlock serve driven by the official openai client, curl
// and raw sockets. Run by ctest: node --test (see tests/CMakeLists.txt).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import OpenAI from 'openai';
import { BIN, STORIES, tmp, addKey, startServer, storiesGolden, rawRequest } from './harness.mjs';

const keyfile = path.join(tmp, 'keys');
let srv, userKey, adminKey, client;
const ONCE = 'Once upon a time';

before(async () => {
  userKey = addKey(keyfile, 'alice');
  adminKey = addKey(keyfile, 'ops', true);
  srv = await startServer(['--model', `stories=${STORIES}`, '--model', `stories-b=${STORIES}`, '--chat-template', 'chatml',
    '-c', '512', '--parallel', '4', '-t', '1', '--api-keys', keyfile, '--metrics-admin', '--max-body', '65536']);
  client = new OpenAI({ apiKey: userKey, baseURL: srv.url + '/v1', maxRetries: 0 });
});

after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
});

test('GET /v1/models lists every served model', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids.sort(), ['stories', 'stories-b']);
});

test('greedy completion equals llama.cpp golden output', async () => {
  const golden = storiesGolden();
  const r = await client.completions.create({ model: 'stories', prompt: ONCE, max_tokens: 300, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0].text.trimEnd(), golden);
  assert.equal(r.usage.prompt_tokens, 5);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  // the second model answers the same (same file)
  const r2 = await client.completions.create({ model: 'stories-b', prompt: ONCE, max_tokens: 50, temperature: 0 });
  assert.ok(golden.startsWith(r2.choices[0].text));
});

test('streamed completion: one event per token, the same text, usage chunk at the end', async () => {
  const golden = storiesGolden();
  const stream = await client.completions.create({ model: 'stories', prompt: ONCE, max_tokens: 60, temperature: 0, stream: true,
    stream_options: { include_usage: true } });
  let text = '', finish = null, usage = null, chunks = 0;
  for await (const c of stream) {
    if (c.usage) usage = c.usage;
    if (c.choices.length) {
      if (c.choices[0].text) chunks++;
      text += c.choices[0].text;
      if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
    }
  }
  assert.ok(golden.startsWith(text) && text.length > 100, text);
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 60);
  assert.equal(chunks, 60); // one event per token, as OpenAI streams
});

test('max_tokens gives finish_reason length with exactly that many tokens', async () => {
  const r = await client.completions.create({ model: 'stories', prompt: ONCE, max_tokens: 7, temperature: 0 });
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 7);
});

test('stop strings cut the text before the stop, streamed or not', async () => {
  const golden = storiesGolden();
  const want = golden.slice(0, golden.indexOf(' Lily'));
  const r = await client.completions.create({ model: 'stories', prompt: ONCE, max_tokens: 100, temperature: 0, stop: [' Lily', 'zzz'] });
  assert.equal(r.choices[0].text, want);
  assert.equal(r.choices[0].finish_reason, 'stop');
  const s = await client.completions.create({ model: 'stories', prompt: ONCE, max_tokens: 100, temperature: 0, stop: ' Lily', stream: true });
  let text = '';
  for await (const c of s) text += c.choices[0].text;
  assert.equal(text, want);
});

test('chat: non-streamed and streamed answers agree with a completion of the rendered template', async () => {
  const messages = [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: 'Tell me about a cat.' }];
  const r = await client.chat.completions.create({ model: 'stories', messages, max_tokens: 40, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  const text = r.choices[0].message.content;
  assert.ok(text.length > 0);
  // chatml, as its Jinja template renders it (tests/text/test_chat_template checks the renderer)
  const rendered = '<|im_start|>system\nYou tell stories.<|im_end|>\n<|im_start|>user\nTell me about a cat.<|im_end|>\n<|im_start|>assistant\n';
  const c = await client.completions.create({ model: 'stories', prompt: rendered, max_tokens: 40, temperature: 0 });
  assert.equal(c.choices[0].text, text);
  const s = await client.chat.completions.create({ model: 'stories', messages, max_tokens: 40, temperature: 0, stream: true });
  let streamed = '', role = null, finish = null;
  for await (const ch of s) {
    assert.equal(ch.object, 'chat.completion.chunk');
    const d = ch.choices[0].delta;
    if (d.role) role = d.role;
    if (d.content) streamed += d.content;
    if (ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
  }
  assert.equal(role, 'assistant');
  assert.equal(streamed, text);
  assert.equal(finish, r.choices[0].finish_reason);
});

test('logprobs: the greedy token is the top alternative, probabilities are consistent', async () => {
  const r = await client.chat.completions.create({ model: 'stories', messages: [{ role: 'user', content: 'Hello' }],
    max_tokens: 10, temperature: 0, logprobs: true, top_logprobs: 3 });
  const lp = r.choices[0].logprobs.content;
  assert.equal(lp.length, r.usage.completion_tokens);
  let joined = '';
  for (const t of lp) {
    assert.equal(t.top_logprobs.length, 3);
    assert.equal(t.token, t.top_logprobs[0].token);
    assert.ok(Math.abs(t.logprob - t.top_logprobs[0].logprob) < 1e-6);
    assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob && t.top_logprobs[1].logprob >= t.top_logprobs[2].logprob);
    const mass = t.top_logprobs.reduce((a, x) => a + Math.exp(x.logprob), 0);
    assert.ok(t.logprob <= 0 && mass <= 1 + 1e-5);
    assert.deepEqual(Buffer.from(t.bytes).toString(), t.token);
    joined += t.token;
  }
  assert.equal(joined, r.choices[0].message.content);
  const c = await client.completions.create({ model: 'stories', prompt: ONCE, max_tokens: 5, temperature: 0, logprobs: 2 });
  const L = c.choices[0].logprobs;
  assert.equal(L.tokens.length, 5);
  assert.equal(L.tokens.join(''), c.choices[0].text);
  assert.equal(L.text_offset[0], 0);
  assert.equal(Object.keys(L.top_logprobs[0]).length, 2);
});

test('seed makes sampling reproducible', async () => {
  const ask = (seed) => client.completions.create({ model: 'stories', prompt: ONCE, max_tokens: 40, temperature: 1, seed })
    .then((r) => r.choices[0].text);
  const a = await ask(42), b = await ask(42), c = await ask(7);
  assert.equal(a, b);
  assert.notEqual(a, c);
});

test('penalties change greedy output', async () => {
  const plain = await client.completions.create({ model: 'stories', prompt: ONCE, max_tokens: 60, temperature: 0 });
  const pen = await client.completions.create({ model: 'stories', prompt: ONCE, max_tokens: 60, temperature: 0, frequency_penalty: 2, presence_penalty: 2 });
  assert.notEqual(plain.choices[0].text, pen.choices[0].text);
});

test('a repeated prompt prefix is served from the cache', async () => {
  const long = ONCE + ', there was a cat. The cat liked to sleep in the sun. One day the cat saw a dog.';
  await client.completions.create({ model: 'stories', prompt: long, max_tokens: 4, temperature: 0 });
  const r = await client.completions.create({ model: 'stories', prompt: long + ' The dog', max_tokens: 4, temperature: 0 });
  const cached = r.usage.prompt_tokens_details.cached_tokens;
  assert.ok(cached >= 20 && cached < r.usage.prompt_tokens, `cached ${cached} of ${r.usage.prompt_tokens}`);
});

test('errors: OpenAI shapes and status codes', async () => {
  await assert.rejects(client.completions.create({ model: 'nope', prompt: 'x' }),
    (e) => e.status === 404 && e.code === 'model_not_found' && /nope/.test(e.message));
  await assert.rejects(client.completions.create({ model: 'stories', prompt: 'x', max_tokens: 100000 }),
    (e) => e.status === 400 && e.code === 'context_length_exceeded' && e.param === 'max_tokens');
  await assert.rejects(client.completions.create({ model: 'stories', prompt: 'word '.repeat(600) }),
    (e) => e.status === 400 && e.code === 'context_length_exceeded');
  await assert.rejects(client.completions.create({ model: 'stories', prompt: 'x', temperature: 'hot' }),
    (e) => e.status === 400 && e.param === 'temperature' && /number/.test(e.message));
  await assert.rejects(client.completions.create({ model: 'stories', prompt: 'x', temperature: 5 }),
    (e) => e.status === 400 && e.param === 'temperature');
  await assert.rejects(client.completions.create({ model: 'stories', prompt: 'x', n: 3 }), (e) => e.status === 400 && e.param === 'n');
  await assert.rejects(client.chat.completions.create({ model: 'stories', messages: [] }), (e) => e.status === 400 && e.param === 'messages');
  await assert.rejects(client.chat.completions.create({ model: 'stories', messages: [{ role: 'wizard', content: 'x' }] }),
    (e) => e.status === 400 && /wizard/.test(e.message));
  await assert.rejects(client.completions.create({ model: 'stories', prompt: 'x', suffix: 'y' }),
    (e) => e.status === 400 && /fill-in-the-middle/.test(e.message));
  await assert.rejects(client.completions.create({ prompt: 'x' }), (e) => e.status === 400 && e.param === 'model');
  const bad = new OpenAI({ apiKey: 'al-wrong', baseURL: srv.url + '/v1', maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e) => e.status === 401 && e.code === 'invalid_api_key');
});

test('authentication: /health is open, everything else needs a key, /metrics an admin key', async () => {
  assert.equal((await fetch(srv.url + '/health')).status, 200);
  const none = await fetch(srv.url + '/v1/models');
  assert.equal(none.status, 401);
  assert.equal((await none.json()).error.code, 'missing_api_key');
  assert.equal((await fetch(srv.url + '/metrics', { headers: { Authorization: `Bearer ${userKey}` } })).status, 403);
  const m = await fetch(srv.url + '/metrics', { headers: { Authorization: `Bearer ${adminKey}` } });
  assert.equal(m.status, 200);
  const text = await m.text();
  for (const name of ['airlock_requests_total{route="/v1/completions",status="200"}', 'airlock_completion_tokens_total{model="stories"}',
    'airlock_time_to_first_token_seconds_bucket', 'airlock_inter_token_latency_seconds_count', 'airlock_queue_depth',
    'airlock_slots_busy', 'airlock_kv_cache_usage_ratio'])
    assert.ok(text.includes(name), name);
  // the log names key ids, never keys; no prompt text by default
  const log = srv.log();
  const all = JSON.stringify(log);
  assert.ok(!all.includes(userKey) && !all.includes(adminKey));
  assert.ok(!all.includes('Once upon'));
  assert.ok(log.some((l) => l.key === 'alice' && l.route === '/v1/completions' && l.status === 200 && l.completion_tokens > 0));
  assert.ok(log.some((l) => l.status === 401 && l.key === undefined));
});

test('curl: SSE framing of a streamed chat', async () => {
  const body = JSON.stringify({ model: 'stories', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8, temperature: 0, stream: true });
  const out = execFileSync('curl', ['-sS', '-N', '-i', '-H', `Authorization: Bearer ${userKey}`, '-H', 'Content-Type: application/json',
    '-d', body, srv.url + '/v1/chat/completions'], { encoding: 'utf8' });
  const [head, ...rest] = out.split('\r\n\r\n');
  assert.match(head, /^HTTP\/1\.1 200/);
  assert.match(head, /content-type: text\/event-stream/i);
  assert.match(head, /transfer-encoding: chunked/i);
  const payload = rest.join('\r\n\r\n');
  assert.ok(payload.endsWith('data: [DONE]\n\n'));
  const events = payload.split('\n\n').filter((e) => e);
  for (const e of events) assert.match(e, /^data: /);
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'length');
  assert.ok(chunks.every((c) => c.id === chunks[0].id));
});

test('8 concurrent clients get their single-client greedy answers', async () => {
  const prompts = Array.from({ length: 8 }, (_, i) => [ONCE, 'The dog', 'Lily and Ben', 'One day', 'The sun was', 'Tom had a',
    'She saw a big', 'The little bird'][i]);
  const ask = (p) => client.completions.create({ model: 'stories', prompt: p, max_tokens: 120, temperature: 0 }).then((r) => r.choices[0].text);
  const single = [];
  for (const p of prompts) single.push(await ask(p));
  const together = await Promise.all(prompts.map(ask));
  assert.deepEqual(together, single);
  assert.ok(storiesGolden().startsWith(single[0]));
});
