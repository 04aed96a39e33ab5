// robust.test.mjs - hostile and careless clients: malformed bodies, huge
// bodies and headers, slow clients, disconnects, a full queue. After each the
// server must answer with a clear error and keep serving.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import OpenAI from 'openai';
import { synth, startServer, rawRequest, STORIES } from './harness.mjs';

let srv, model;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  model = synth('smollm2-135m', 'Q4_0');
  srv = await startServer(['-m', `smol=${model}`, '--chat-template', 'chatml', '--no-auth', '-c', '2048', '--parallel', '2',
    '--queue', '1', '-t', '1', '--idle-timeout', '2', '--timeout', '8', '--max-body', '65536', '--max-header', '8192'], 'robust');
});

after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
});

async function post(path, body, headers = {}) {
  const r = await fetch(srv.url + path, { method: 'POST', body, headers: { 'Content-Type': 'application/json', ...headers } });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text, headers: r.headers };
}

async function healthy() {
  const h = await fetch(srv.url + '/health');
  assert.equal(h.status, 200);
  // the server closes a connection silent for --idle-timeout (2 s here) and says
  // so, so that pooling clients drop it first rather than race the close
  assert.equal(h.headers.get('keep-alive'), 'timeout=2');
  assert.match(h.headers.get('x-request-id'), /\S/);
  const r = await post('/v1/completions', JSON.stringify({ prompt: 'hello', max_tokens: 2, temperature: 0 }));
  assert.equal(r.status, 200, r.text);
}

async function slotsBusy() {
  const t = await (await fetch(srv.url + '/metrics')).text();
  return Number(/^airlock_slots_busy (\S+)$/m.exec(t)[1]);
}

const bad = [
  ['not JSON', '{"prompt": "x",', 400, /not valid JSON/],
  ['empty body', '', 400, /not valid JSON/],
  ['JSON array body', '[1,2]', 400, /must be a JSON object/],
  ['NUL escape in a string', '{"prompt": "a\\u0000b"}', 400, /not valid JSON|NUL/],
  ['negative max_tokens', '{"prompt": "x", "max_tokens": -5}', 400, /max_tokens/],
  ['huge max_tokens', '{"prompt": "x", "max_tokens": 1e300}', 400, /max_tokens/],
  ['number overflow', '{"prompt": "x", "temperature": 1e400}', 400, /not valid JSON/],
  ['integer overflow', '{"prompt": "x", "seed": 99999999999999999999999999}', 400, /not valid JSON/],
  ['fractional integer', '{"prompt": "x", "seed": 1.5}', 400, /seed/],
  ['string temperature', '{"prompt": "x", "temperature": "hot"}', 400, /temperature/],
  ['boolean as string', '{"prompt": "x", "stream": "yes"}', 400, /stream/],
  ['stop of wrong type', '{"prompt": "x", "stop": 5}', 400, /stop/],
  ['too many stops', '{"prompt": "x", "stop": ["a","b","c","d","e"]}', 400, /stop/],
  ['empty stop', '{"prompt": "x", "stop": [""]}', 400, /stop/],
  ['missing prompt', '{"max_tokens": 3}', 400, /prompt/],
  ['empty prompt array', '{"prompt": []}', 400, /prompt/],
  ['token id out of range', '{"prompt": [1, 2, 99999999]}', 400, /token id/],
  ['negative token id', '{"prompt": [-1]}', 400, /token id/],
  ['top_p out of range', '{"prompt": "x", "top_p": 2}', 400, /top_p/],
  ['logprobs too many', '{"prompt": "x", "logprobs": 50}', 400, /logprobs/],
  ['deep nesting', '{"prompt": ' + '['.repeat(20000) + ']'.repeat(20000) + '}', 400, /not valid JSON/],
  ['duplicate key', '{"prompt": "x", "prompt": "y"}', 400, /not valid JSON/],
];

for (const [name, body, status, re] of bad)
  test(`completions: ${name} -> ${status}`, async () => {
    const r = await post('/v1/completions', body);
    assert.equal(r.status, status, r.text);
    assert.ok(r.json && r.json.error && typeof r.json.error.message === 'string', r.text);
    assert.match(r.json.error.message, re);
    assert.equal(r.json.error.type, 'invalid_request_error');
  });

const badChat = [
  ['messages missing', '{}', /messages/],
  ['messages not an array', '{"messages": "hi"}', /messages/],
  ['message not an object', '{"messages": [3]}', /messages\[0\]/],
  ['content a number', '{"messages": [{"role": "user", "content": 5}]}', /content/],
  ['image content part', '{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}', /text/],
  ['role missing', '{"messages": [{"content": "x"}]}', /role/],
  ['top_logprobs without logprobs', '{"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}', /logprobs/],
];
for (const [name, body, re] of badChat)
  test(`chat: ${name} -> 400`, async () => {
    const r = await post('/v1/chat/completions', body);
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.message, re);
  });

test('invalid UTF-8 in the body -> 400', async () => {
  const body = Buffer.concat([Buffer.from('{"prompt": "a'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]);
  const r = await rawRequest(srv.port, [`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`, body]);
  assert.equal(r.status, 400);
  assert.match(r.body, /not valid JSON/);
});

test('body over --max-body -> 413, declared or chunked', async () => {
  const big = JSON.stringify({ prompt: 'x'.repeat(70000) });
  const r = await post('/v1/completions', big);
  assert.equal(r.status, 413);
  assert.equal(r.json.error.code, 'body_too_large');
  const chunk = 'a'.repeat(10000);
  const parts = [`POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`];
  for (let i = 0; i < 8; i++) parts.push(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
  parts.push('0\r\n\r\n');
  const c = await rawRequest(srv.port, parts);
  assert.equal(c.status, 413);
});

test('headers over --max-header are refused', async () => {
  const r = await rawRequest(srv.port, [`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20000)}\r\nConnection: close\r\n\r\n`]);
  assert.ok(r.status === 431 || r.status === 413 || r.status === 400, `status ${r.status}`);
});

test('unknown route -> 404, wrong method -> 405', async () => {
  assert.equal((await fetch(srv.url + '/v1/nothing')).status, 404);
  assert.equal((await fetch(srv.url + '/v1/completions')).status, 405);
  const r = await post('/health', '{}');
  assert.equal(r.status, 405);
});

test('a client that stops mid-headers is dropped after the idle timeout', async () => {
  const t0 = Date.now();
  const r = await rawRequest(srv.port, ['POST /v1/completions HTTP/1.1\r\nHost: x\r\n'], { timeoutMs: 15000 });
  assert.ok(!r.timeout, 'connection still open after 15 s');
  assert.ok(Date.now() - t0 < 10000);
  await healthy();
});

test('a client dripping its body is dropped at the total timeout', async () => {
  const t0 = Date.now();
  const parts = ['POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n'];
  for (let i = 0; i < 30; i++) parts.push('x');
  const r = await rawRequest(srv.port, parts, { delayMs: 1000, timeoutMs: 25000 });
  assert.ok(!r.timeout, 'connection still open');
  const dt = Date.now() - t0;
  assert.ok(dt >= 7000 && dt < 15000, `dropped after ${dt} ms`);
  await healthy();
});

test('a streaming client that disconnects stops its generation at once', async () => {
  const ac = new AbortController();
  const client = new OpenAI({ apiKey: 'none', baseURL: srv.url + '/v1', maxRetries: 0 });
  const stream = await client.completions.create({ prompt: 'The story', max_tokens: 1900, temperature: 0, stream: true },
    { signal: ac.signal });
  let n = 0;
  try {
    for await (const c of stream) { if (c.choices[0]?.text) n++; if (n >= 2) ac.abort(); }
  } catch { /* aborted */ }
  const t0 = Date.now();
  while ((await slotsBusy()) > 0) {
    assert.ok(Date.now() - t0 < 3000, 'slot still busy 3 s after the client left');
    await sleep(50);
  }
  await sleep(100);
  const line = srv.log().filter((l) => l.route === '/v1/completions' && l.stream).at(-1);
  assert.equal(line.client_closed, true);
  assert.ok(line.completion_tokens < 1900, `generated ${line.completion_tokens}`);
});

test('a non-streaming client that disconnects frees its slot', async () => {
  const body = JSON.stringify({ prompt: 'The story', max_tokens: 1900, temperature: 0 });
  const sock = net.connect(srv.port, '127.0.0.1');
  sock.on('error', () => {});
  sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  let t0 = Date.now();
  while ((await slotsBusy()) !== 1) {
    assert.ok(Date.now() - t0 < 10000, 'the request never took a slot');
    await sleep(20);
  }
  sock.destroy();
  t0 = Date.now();
  while ((await slotsBusy()) > 0) {
    assert.ok(Date.now() - t0 < 3000, 'slot still busy after the client left');
    await sleep(50);
  }
});

test('a full queue answers 503 with Retry-After; the server recovers', async () => {
  const body = JSON.stringify({ prompt: 'Once', max_tokens: 1500, temperature: 0, stream: true });
  const acs = [], results = [];
  for (let i = 0; i < 5; i++) {
    const ac = new AbortController();
    acs.push(ac);
    results.push(fetch(srv.url + '/v1/completions', { method: 'POST', body, signal: ac.signal }).then((r) => r, (e) => e));
    await sleep(30);
  }
  const rs = await Promise.all(results);
  const refused = rs.filter((r) => r.status === 503);
  assert.ok(refused.length >= 2, `statuses ${rs.map((r) => r.status)}`);
  assert.equal(refused[0].headers.get('retry-after'), '1');
  assert.equal((await refused[0].json()).error.code, 'overloaded');
  for (const ac of acs) ac.abort();
  const t0 = Date.now();
  // a liveness bound, not a speed check: generous for sanitizer builds on a
  // loaded 2-core machine (5 s was exceeded there once)
  while ((await slotsBusy()) > 0) {
    assert.ok(Date.now() - t0 < 30000, `slots still busy ${Date.now() - t0} ms after the clients left`);
    await sleep(50);
  }
  await healthy();
});

test('8 concurrent clients on a batched model get their single-client answers', async () => {
  const s8 = await startServer(['-m', `smol=${model}`, '--chat-template', 'chatml', '--no-auth', '-c', '512', '--parallel', '8', '-t', '1'], 'batch8');
  try {
    const client = new OpenAI({ apiKey: 'none', baseURL: s8.url + '/v1', maxRetries: 0 });
    const ask = (i) => client.chat.completions.create({ messages: [{ role: 'user', content: `Question number ${i}: what is ${i * 7}?` }],
      max_tokens: 16, temperature: 0 }).then((r) => r.choices[0].message.content);
    const single = [];
    for (let i = 0; i < 8; i++) single.push(await ask(i));
    const together = await Promise.all(Array.from({ length: 8 }, (_, i) => ask(i)));
    assert.deepEqual(together, single);
    assert.equal(new Set(single).size, 8);
  } finally {
    assert.equal(await s8.stop(), 0);
  }
});

test('--max-conns: a connection beyond the limit waits until one closes', async () => {
  const s2 = await startServer(['-m', STORIES, '--no-auth', '--max-conns', '2', '-t', '1'], 'conns');
  try {
    const idle = [net.connect(s2.port, '127.0.0.1'), net.connect(s2.port, '127.0.0.1')];
    await Promise.all(idle.map((c) => new Promise((r) => c.on('connect', r))));
    await sleep(200);
    let done = false;
    const third = rawRequest(s2.port, ['GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], { timeoutMs: 10000 })
      .then((r) => { done = true; return r; });
    await sleep(1000);
    assert.equal(done, false, 'a third connection was served while two were open');
    for (const c of idle) c.destroy();
    const r = await third;
    assert.equal(r.status, 200);
  } finally {
    assert.equal(await s2.stop(), 0);
  }
});

test('after all that the server still serves', healthy);
