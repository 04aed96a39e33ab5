// harness.mjs - starts `airlock serve` for the tests and stops it again.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const BIN = process.env.AIRLOCK_BINARY;
export const MODELS = process.env.AIRLOCK_MODELS_DIR;
if (!BIN || !MODELS) throw new Error('set AIRLOCK_BINARY and AIRLOCK_MODELS_DIR');
export const STORIES = path.join(MODELS, 'llm/stories260K.gguf');
export const tmp = mkdtempSync(path.join(tmpdir(), 'airlock-server-test-'));

// A new API key in keyfile (airlock keys add); returns the key.
export function addKey(keyfile, id, admin = false) {
  const args = ['keys', 'add', keyfile, '--id', id];
  if (admin) args.push('--admin');
  return execFileSync(BIN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
}

// A synthetic model at a real shape (cached in the temp dir).
export function synth(shape, type, extra = []) {
  const out = path.join(tmp, `${shape}-${type}${extra.join('')}.gguf`);
  if (!existsSync(out))
    execFileSync(BIN, ['synth', '--shape', shape, '--type', type, '--vocab',
      path.join(MODELS, 'tokenizer-fixtures/ggml-vocab-gpt-2.gguf'), '-o', out, ...extra], { stdio: 'ignore' });
  return out;
}

// Starts the server with args; resolves to {url, port, proc, logFile, stop()}.
export function startServer(args, name = 'srv') {
  const logFile = path.join(tmp, `${name}.log`);
  const proc = spawn(BIN, ['serve', '--port', '0', '--host', '127.0.0.1', '--log-file', logFile, ...args],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start: ' + err)), 60000);
    proc.stderr.on('data', (d) => {
      err += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        const port = Number(m[1]);
        resolve({
          url: `http://127.0.0.1:${port}`, port, proc, logFile,
          stderr: () => err,
          log: () => readFileSync(logFile, 'utf8').trim().split('\n').filter((l) => l).map((l) => JSON.parse(l)),
          stop: () => new Promise((res) => { proc.on('exit', (code) => res(code)); proc.kill('SIGTERM'); }),
        });
      }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}: ${err}`)); });
  });
}

// The golden greedy continuation of "Once upon a time" (llama.cpp, 300 tokens).
export function storiesGolden() {
  const g = readFileSync(path.join(MODELS, 'llm/stories260K.gguf.expected_llamacpp_greedy_prompt_once_upon_a_time_n300.txt'), 'utf8');
  return g.trim().slice('Once upon a time'.length);
}

// Raw HTTP over a socket: sends bytes, returns {status, headers, body} (or the error).
import net from 'node:net';
export function rawRequest(port, chunks, { delayMs = 0, timeoutMs = 20000 } = {}) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => { s.destroy(); resolve({ status: 0, timeout: true, raw: data.toString() }); }, timeoutMs);
    s.on('data', (d) => { data = Buffer.concat([data, d]); });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      const txt = data.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d+)/.exec(txt);
      const body = txt.split('\r\n\r\n').slice(1).join('\r\n\r\n');
      resolve({ status: m ? Number(m[1]) : 0, raw: txt, body });
    });
    (async () => {
      for (const c of chunks) {
        if (s.destroyed) return;
        s.write(c);
        if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      }
    })();
  });
}
