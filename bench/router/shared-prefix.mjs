// bench/router/shared-prefix.mjs - the shared-prefix workload of llm-d's
// routing benchmarks (inference-perf `shared_prefix`: groups of prompts that
// share a long system prompt, each followed by its own question; completions
// API, streaming, ignore_eos), scaled down, sent with Poisson arrivals at a
// fixed rate. Prints one JSON line: requests, errors, TTFT p50/p90/p99 (s),
// output tokens/s, requests/s.
// usage: node shared-prefix.mjs URL MODEL --rate R --duration S [--groups G]
//        [--prompts-per-group P] [--system-words W] [--question-words Q]
//        [--max-tokens T] [--seed N]
const args = process.argv.slice(2);
const url = args[0], model = args[1];
const opt = (k, d) => { const i = args.indexOf(k); return i >= 0 ? +args[i + 1] : d; };
const rate = opt('--rate', 4), duration = opt('--duration', 20), G = opt('--groups', 48);
const P = opt('--prompts-per-group', 5), SW = opt('--system-words', 1500), QW = opt('--question-words', 150);
const T = opt('--max-tokens', 16);
// prompts come from a fixed content seed; --seed only drives arrivals and choices
let seed = 12345;
const rnd = () => { seed = (seed * 1664525 + 1013904223) >>> 0; return seed / 4294967296; };
const vocab = ('the of and to in is you that it he was for on are as with his they at be this have from or one ' +
  'had by word but not what all were we when your can said there use an each which she do how their if will up ' +
  'other about out many then them these so some her would make like him into time has look two more write go see ' +
  'number no way could people my than first water been call who oil its now find long down day did get come made ' +
  'may part over new sound take only little work know place year live me back give most very after thing our just ' +
  'name good sentence man think say great where help through much before line right too mean old any same tell boy ' +
  'follow came want show also around form three small set put end does another well large must big even such because').split(' ');
const text = (n) => Array.from({ length: n }, () => vocab[Math.floor(rnd() * vocab.length)]).join(' ');
const systems = Array.from({ length: G }, (_, g) => `System prompt ${g}: ` + text(SW));
const questions = Array.from({ length: G }, () => Array.from({ length: P }, () => text(QW)));
seed = opt('--seed', 42) >>> 0;

const ttft = [];
let outTok = 0, errors = 0, done = 0, sent = 0;
const t0 = performance.now();
let tEnd = t0;

async function one() {
  const g = Math.floor(rnd() * G), q = Math.floor(rnd() * P);
  const body = { model, prompt: systems[g] + '\nQuestion: ' + questions[g][q], max_tokens: T, temperature: 0,
    ignore_eos: true, stream: true, stream_options: { include_usage: true } };
  const start = performance.now();
  let first = null, buf = '';
  try {
    const r = await fetch(url + '/v1/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body) });
    if (!r.ok) { errors++; await r.text(); return; }
    const dec = new TextDecoder();
    for await (const chunk of r.body) {
      buf += dec.decode(chunk, { stream: true });
      let k;
      while ((k = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, k); buf = buf.slice(k + 2);
        if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
        const j = JSON.parse(ev.slice(6));
        if (j.error) { errors++; return; }
        if (j.usage) outTok += j.usage.completion_tokens;
        if (first === null && j.choices && j.choices.length) first = performance.now();
      }
    }
    if (first !== null) ttft.push((first - start) / 1000);
    done++;
    tEnd = Math.max(tEnd, performance.now());
  } catch (e) { errors++; }
}

const inflight = [];
let tNext = t0;
while (true) {
  tNext += -Math.log(1 - rnd()) / rate * 1000;
  if (tNext - t0 > duration * 1000) break;
  const wait = tNext - performance.now();
  if (wait > 0) await new Promise(r => setTimeout(r, wait));
  sent++;
  inflight.push(one());
}
await Promise.all(inflight);
ttft.sort((a, b) => a - b);
const pct = (p) => ttft.length ? +ttft[Math.min(ttft.length - 1, Math.floor(p * ttft.length))].toFixed(4) : null;
const wall = (tEnd - t0) / 1000;
console.log(JSON.stringify({ rate, sent, done, errors, ttft_p50: pct(0.5), ttft_p90: pct(0.9), ttft_p99: pct(0.99),
  output_tok_s: +(outTok / wall).toFixed(1), req_s: +(done / wall).toFixed(2) }));
