// tests/node/openai-serve.mjs - drives a running llmd-engine (or anything
// OpenAI-compatible: the router reuses it) with the official `openai` client.
// usage: node openai-serve.mjs BASE_URL MODEL [EXPECT_JSON]
// EXPECT_JSON (optional): {"prompt":"...","greedy_text":"..."} from
// `llmd-engine generate --print-ids`, checked against the server's answer.
// Prints "openai-serve: N passed, M failed".
import OpenAI from 'openai';

const [base, model, expectJson] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base + '/v1', apiKey: process.env.LLMD_API_KEY || 'none', maxRetries: 0 });
let passed = 0, failed = 0;
function check(name, ok, detail) {
  if (ok) { passed++; } else { failed++; console.log(`FAIL: ${name}${detail ? ': ' + detail : ''}`); }
}
async function step(name, fn) {
  try { await fn(); } catch (e) { failed++; console.log(`FAIL: ${name}: ${e && e.stack || e}`); }
}

await step('completions non-streaming', async () => {
  const r = await client.completions.create({ model, prompt: 'Hello, world', max_tokens: 7, temperature: 0 });
  check('cmpl object', r.object === 'text_completion', r.object);
  check('cmpl id', r.id.startsWith('cmpl-'), r.id);
  check('cmpl finish length', r.choices[0].finish_reason === 'length', r.choices[0].finish_reason);
  check('cmpl usage completion', r.usage.completion_tokens === 7, JSON.stringify(r.usage));
  check('cmpl usage total', r.usage.total_tokens === r.usage.prompt_tokens + 7);
  check('cmpl text is a string', typeof r.choices[0].text === 'string');
});

if (expectJson) {
  await step('greedy text equals generate CLI', async () => {
    const exp = JSON.parse(expectJson);
    const r = await client.completions.create({ model, prompt: exp.prompt, max_tokens: exp.max_tokens, temperature: 0 });
    check('same text as llmd-engine generate', r.choices[0].text === exp.text,
      JSON.stringify([r.choices[0].text, exp.text]));
  });
}

await step('chat non-streaming', async () => {
  const r = await client.chat.completions.create({ model, messages: [
    { role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Say hi' }], max_tokens: 5, temperature: 0 });
  check('chat object', r.object === 'chat.completion');
  check('chat role', r.choices[0].message.role === 'assistant');
  check('chat usage', r.usage.completion_tokens === 5 && r.usage.prompt_tokens > 5, JSON.stringify(r.usage));
});

await step('chat streaming with usage', async () => {
  const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Count' }],
    max_tokens: 6, temperature: 0, stream: true, stream_options: { include_usage: true } });
  let text = '', role = null, finish = null, usage = null, chunks = 0;
  for await (const c of stream) {
    chunks++;
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      if (ch.delta.role) role = ch.delta.role;
      if (ch.delta.content) text += ch.delta.content;
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  check('stream role first', role === 'assistant');
  check('stream finish', finish === 'length', finish);
  check('stream usage', usage && usage.completion_tokens === 6, JSON.stringify(usage));
  // the same request without streaming gives the same text (greedy)
  const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Count' }], max_tokens: 6, temperature: 0 });
  check('stream text == non-stream text', r.choices[0].message.content === text, JSON.stringify([text, r.choices[0].message.content]));
});

await step('completions streaming', async () => {
  const stream = await client.completions.create({ model, prompt: 'abc', max_tokens: 4, temperature: 0, stream: true });
  let n = 0, fin = null;
  for await (const c of stream) { n++; if (c.choices[0] && c.choices[0].finish_reason) fin = c.choices[0].finish_reason; }
  check('cmpl stream chunks', n >= 1 && fin === 'length', `${n} ${fin}`);
});

await step('logprobs', async () => {
  const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], max_tokens: 3,
    temperature: 0, logprobs: true, top_logprobs: 2 });
  const c = r.choices[0].logprobs.content;
  check('chat logprobs entries', c.length === 3, JSON.stringify(c));
  check('chat top_logprobs', c.every(e => e.top_logprobs.length === 2 && e.logprob <= 0));
  // greedy: the chosen token is the most likely one
  check('greedy picks top1', c.every(e => Math.abs(e.logprob - e.top_logprobs[0].logprob) < 1e-4));
  const r2 = await client.completions.create({ model, prompt: 'x', max_tokens: 2, temperature: 0, logprobs: 1 });
  check('cmpl logprobs', r2.choices[0].logprobs.tokens.length === 2 && r2.choices[0].logprobs.top_logprobs.length === 2);
});

await step('seed reproducible', async () => {
  const a = await client.completions.create({ model, prompt: 'seed test', max_tokens: 8, temperature: 1.0, seed: 42 });
  const b = await client.completions.create({ model, prompt: 'seed test', max_tokens: 8, temperature: 1.0, seed: 42 });
  check('same seed same text', a.choices[0].text === b.choices[0].text);
});

await step('stop string', async () => {
  const full = await client.completions.create({ model, prompt: 'The stop test', max_tokens: 12, temperature: 0 });
  const t = full.choices[0].text;
  if (t.length >= 4) {
    const stop = t.slice(2, 4);
    const r = await client.completions.create({ model, prompt: 'The stop test', max_tokens: 12, temperature: 0, stop: [stop] });
    const cut = t.indexOf(stop);
    check('stop cuts text', r.choices[0].text === t.slice(0, cut), JSON.stringify([t, stop, r.choices[0].text]));
    check('stop reason', r.choices[0].finish_reason === 'stop' && r.choices[0].stop_reason === stop,
      JSON.stringify(r.choices[0]));
  } else {
    check('stop test text long enough', false, JSON.stringify(t));
  }
});

await step('64 concurrent streams', async () => {
  const one = async (i) => {
    const s = await client.completions.create({ model, prompt: `request ${i} `.repeat(1 + (i % 5)), max_tokens: 8,
      temperature: 0, stream: true, stream_options: { include_usage: true } });
    let usage = null, text = '';
    for await (const c of s) { if (c.usage) usage = c.usage; if (c.choices[0]) text += c.choices[0].text; }
    return { usage, text, i };
  };
  const res = await Promise.all(Array.from({ length: 64 }, (_, i) => one(i)));
  check('all 64 finished with exact usage', res.every(r => r.usage && r.usage.completion_tokens === 8),
    JSON.stringify(res.filter(r => !r.usage || r.usage.completion_tokens !== 8).slice(0, 3)));
  // batched greedy output equals the same prompt alone
  const alone = await client.completions.create({ model, prompt: 'request 3 '.repeat(4), max_tokens: 8, temperature: 0 });
  check('busy batch == alone (greedy)', alone.choices[0].text === res[3].text, JSON.stringify([alone.choices[0].text, res[3].text]));
});

await step('models', async () => {
  const m = await client.models.list();
  check('models list has the model', m.data.some(x => x.id === model));
});

console.log(`openai-serve: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
