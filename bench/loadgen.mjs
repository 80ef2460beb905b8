// bench/loadgen.mjs - a small OpenAI-API load generator (Node's fetch, no
// dependencies): C concurrent clients, each sending requests back to back
// until N requests are done; streaming, so TTFT and inter-token latency are
// measured per token. Prints one JSON line of results.
// usage: node loadgen.mjs URL MODEL --concurrency C --requests N --max-tokens T
//        [--prompt-words W] [--shared-prefix-words P] [--rate R]
//        [--header 'Name: value'] [--long-every K --long-words L] [--path /v1/completions]
const args = process.argv.slice(2);
const url = args[0], model = args[1];
const opt = (k, d) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : d; };
const C = +opt('--concurrency', 1), N = +opt('--requests', C * 4), T = +opt('--max-tokens', 64);
const W = +opt('--prompt-words', 32), P = +opt('--shared-prefix-words', 0), rate = +opt('--rate', 0);
const hdr = opt('--header', null), longEvery = +opt('--long-every', 0), longWords = +opt('--long-words', 0);
const path = opt('--path', '/v1/completions');
const extraHeaders = {};
if (hdr) { const k = hdr.indexOf(':'); extraHeaders[hdr.slice(0, k).trim()] = hdr.slice(k + 1).trim(); }
const words = (n, seed) => Array.from({ length: n }, (_, i) => `w${(i * 7919 + seed * 104729) % 5000}`).join(' ');
const shared = P ? words(P, 999) + ' ' : '';
let next = 0;
const ttft = [], itl = [], e2e = [];
let outTok = 0, errors = 0;
const t0 = performance.now();

async function one(i) {
  const nw = longEvery && i % longEvery === 0 ? longWords : W;
  const body = { model, prompt: shared + words(nw, i), max_tokens: T, temperature: 0, ignore_eos: true,
    stream: true, stream_options: { include_usage: true } };
  const start = performance.now();
  let last = start, first = null, buf = '';
  try {
    const r = await fetch(url + path, { method: 'POST', headers: { 'Content-Type': 'application/json', ...extraHeaders },
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
        if (j.usage) outTok += j.usage.completion_tokens;
        if (j.choices && j.choices.length) {
          const now = performance.now();
          if (first === null) { first = now; ttft.push(now - start); } else itl.push(now - last);
          last = now;
        }
      }
    }
    e2e.push(performance.now() - start);
  } catch (e) { errors++; }
}

async function worker() {
  for (;;) {
    const i = next++;
    if (i >= N) return;
    if (rate > 0) {
      const due = t0 + (i / rate) * 1000, now = performance.now();
      if (due > now) await new Promise(r => setTimeout(r, due - now));
    }
    await one(i);
  }
}
await Promise.all(Array.from({ length: rate > 0 ? Math.max(C, 256) : C }, worker));
const secs = (performance.now() - t0) / 1000;
const pct = (a, p) => { if (!a.length) return null; const s = [...a].sort((x, y) => x - y); return +s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))].toFixed(2); };
console.log(JSON.stringify({ concurrency: C, requests: N, errors, seconds: +secs.toFixed(3),
  output_tok_per_s: +(outTok / secs).toFixed(1), ttft_ms_p50: pct(ttft, 50), ttft_ms_p90: pct(ttft, 90),
  ttft_ms_p99: pct(ttft, 99), itl_ms_p50: pct(itl, 50), itl_ms_p99: pct(itl, 99), e2e_ms_p50: pct(e2e, 50) }));
