// server_bench.mjs - aggregate generation throughput and time to first token
// of an OpenAI-compatible server under N concurrent streams.
//
//   node bench/server_bench.mjs URL [--model NAME] [--key KEY] [--streams 1,4,8]
//        [--requests R] [--max-tokens N] [--prompt-words W] [--label TEXT]
//
// Each of N clients sends R streamed /v1/completions requests back to back
// (distinct prompts, temperature 0, ignore_eos so every request generates
// exactly --max-tokens tokens). Aggregate tokens/s = all generated tokens /
// wall time of the level; TTFT = request sent -> first token received.
// Prints one markdown row per level. Works against airlock serve and
// llama.cpp's llama-server alike.

const args = process.argv.slice(2);
const url = args[0];
if (!url) { console.error('usage: node bench/server_bench.mjs URL [options]'); process.exit(2); }
const opt = (name, dflt) => { const i = args.indexOf(name); return i > 0 ? args[i + 1] : dflt; };
const model = opt('--model', undefined);
const key = opt('--key', 'none');
const streams = opt('--streams', '1,4,8').split(',').map(Number);
const requests = Number(opt('--requests', '2'));
const maxTokens = Number(opt('--max-tokens', '128'));
const promptWords = Number(opt('--prompt-words', '64'));
const label = opt('--label', url);

const WORDS = ['river', 'stone', 'market', 'lantern', 'harbor', 'winter', 'garden', 'letter', 'engine', 'silver',
  'forest', 'window', 'coffee', 'thunder', 'meadow', 'pocket', 'violin', 'shadow', 'candle', 'bridge'];
function prompt(i) {
  let s = `Request ${i}:`;
  for (let k = 0; k < promptWords; k++) s += ' ' + WORDS[(i * 7 + k * 13 + (k * k) % 5) % WORDS.length];
  return s;
}

// One streamed completion; resolves {ttft, tokens, seconds}.
async function one(i) {
  const body = { prompt: prompt(i), max_tokens: maxTokens, temperature: 0, stream: true, ignore_eos: true,
    stream_options: { include_usage: true } };
  if (model) body.model = model;
  const t0 = performance.now();
  const r = await fetch(url + '/v1/completions', { method: 'POST', body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` } });
  if (r.status !== 200) throw new Error(`status ${r.status}: ${await r.text()}`);
  let ttft = null, chunks = 0, usage = null, buf = '';
  const dec = new TextDecoder();
  for await (const part of r.body) {
    buf += dec.decode(part, { stream: true });
    let k;
    while ((k = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, k).trim();
      buf = buf.slice(k + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const j = JSON.parse(ev.slice(6));
      if (j.usage) usage = j.usage;
      const text = j.choices?.[0]?.text ?? j.content;
      if (text) { chunks++; if (ttft === null) ttft = performance.now() - t0; }
    }
  }
  return { ttft, tokens: usage?.completion_tokens ?? chunks, seconds: (performance.now() - t0) / 1e3 };
}

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

let next = 0;
await one(next++); // warm-up (first-touch of weights, connection setup)
for (const n of streams) {
  const res = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: n }, async () => {
    for (let r = 0; r < requests; r++) res.push(await one(next++));
  }));
  const wall = (performance.now() - t0) / 1e3;
  const tokens = res.reduce((a, x) => a + x.tokens, 0);
  const ttfts = res.map((x) => x.ttft);
  console.log(`| ${label} | ${n} | ${res.length} | ${tokens} | ${(tokens / wall).toFixed(1)} | ${pct(ttfts, 50).toFixed(0)} | ${pct(ttfts, 99).toFixed(0)} |`);
}
