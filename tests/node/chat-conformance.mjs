// tests/node/chat-conformance.mjs - renders chat templates with
// @huggingface/jinja and with llmd's tests/tools/render-chat, compares the
// results byte for byte and prints "chat-template-conformance: N passed, M failed".
//
// usage: node chat-conformance.mjs RENDER_CHAT CASES.json TEMPLATE...
// A TEMPLATE is a .jinja file or a tokenizer_config.json. Variables are built
// as engine/chat.c builds them: add_generation_prompt=false and tools=null
// unless given, bos/eos tokens from the config, chat_template_kwargs merged
// in, messages as vLLM prepares them (content one string: parts joined with
// "\n", null as ""; or, for templates that loop over message content, a
// list of parts; tool call arguments given as JSON strings parsed); bare
// .jinja templates get bos_token "<s>", eos_token "</s>".
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { Template } from "@huggingface/jinja";

const [renderChat, casesPath, ...templates] = process.argv.slice(2);
if (!renderChat || !casesPath || templates.length === 0) {
  console.error("usage: node chat-conformance.mjs RENDER_CHAT CASES.json TEMPLATE...");
  process.exit(2);
}
const cases = JSON.parse(readFileSync(casesPath, "utf8"));

function tokenText(t) {
  return t && typeof t === "object" ? t.content : t;
}

function loadTemplate(path) {
  if (path.endsWith(".json")) {
    const cfg = JSON.parse(readFileSync(path, "utf8"));
    const vars = {};
    for (const k of ["bos_token", "eos_token"]) {
      if (typeof tokenText(cfg[k]) === "string") vars[k] = tokenText(cfg[k]);
    }
    return { source: cfg.chat_template, vars };
  }
  // render-chat gives bare templates these tokens too
  return { source: readFileSync(path, "utf8"), vars: { bos_token: "<s>", eos_token: "</s>" } };
}

function buildVars(tpl, c) {
  const loopsOverContent = /\{%-?\s*for\s+[\w\s,]+\s+in\s+[^%]*content/.test(tpl.source);
  const messages = c.messages.map((m) => {
    const out = { ...m };
    if (loopsOverContent) {
      if (typeof m.content === "string") out.content = [{ type: "text", text: m.content }];
      else if (m.content == null) out.content = [];
    } else if (Array.isArray(m.content)) {
      out.content = m.content.map((p) => (typeof p === "string" ? p : p.text)).join("\n");
    } else if (m.content == null) {
      out.content = "";
    }
    if (Array.isArray(m.tool_calls)) {
      out.tool_calls = m.tool_calls.map((tc) =>
        tc.function && typeof tc.function.arguments === "string"
          ? { ...tc, function: { ...tc.function, arguments: JSON.parse(tc.function.arguments) } }
          : tc);
    }
    return out;
  });
  const vars = { ...tpl.vars, add_generation_prompt: false, tools: null };
  let kwargs = null;
  for (const [k, v] of Object.entries(c.vars || {})) {
    if (k === "chat_template_kwargs") kwargs = v;
    else if (k !== "messages") vars[k] = v;
  }
  if (kwargs) for (const [k, v] of Object.entries(kwargs)) if (k !== "messages") vars[k] = v;
  vars.messages = messages;
  return vars;
}

let passed = 0;
let failed = 0;
for (const path of templates) {
  const tpl = loadTemplate(path);
  const name = path.split("/").pop();
  let actual;
  try {
    actual = JSON.parse(execFileSync(renderChat, [path, casesPath], { encoding: "utf8" }));
  } catch (err) {
    console.log(`FAIL ${name}: render-chat failed: ${err.message}`);
    failed += cases.length;
    continue;
  }
  const compiled = new Template(tpl.source);
  cases.forEach((c, i) => {
    const got = actual[i] || {};
    let want;
    let wantErr = null;
    try {
      want = compiled.render(buildVars(tpl, c));
    } catch (err) {
      wantErr = err.message;
    }
    const label = `${name} / ${c.name}`;
    // Where @huggingface/jinja departs from Jinja2 (what vLLM runs), the case
    // names the Jinja2 result instead.
    const div = (c.divergences || []).find((d) => d.template === name);
    if (div) {
      const ok = div.expect_error !== undefined
        ? got.error !== undefined && got.error.includes(div.expect_error)
        : got.output !== undefined && div.expect_output_includes.every((x) => got.output.includes(x));
      if (ok) {
        passed++;
        console.log(`ok   ${label} (known divergence: ${div.reason})`);
      } else {
        failed++;
        console.log(`FAIL ${label}: expected the Jinja2 result ` +
          JSON.stringify(div.expect_error ?? div.expect_output_includes) + `, got ${JSON.stringify(got)}`);
      }
      return;
    }
    if (wantErr !== null) {
      // Both must fail (the wording of errors other than raise_exception
      // messages differs between the two implementations).
      if (got.error !== undefined) {
        passed++;
        console.log(`ok   ${label} (both fail: ${JSON.stringify(wantErr)} / ${JSON.stringify(got.error)})`);
      } else {
        failed++;
        console.log(`FAIL ${label}: expected error ${JSON.stringify(wantErr)}, got ` +
          JSON.stringify(got.error !== undefined ? { error: got.error } : { output: got.output }));
      }
      return;
    }
    if (got.output === want) {
      passed++;
      console.log(`ok   ${label}`);
      return;
    }
    failed++;
    if (got.error !== undefined) {
      console.log(`FAIL ${label}: llmd failed: ${got.error}`);
      return;
    }
    let at = 0;
    while (at < want.length && got.output[at] === want[at]) at++;
    console.log(`FAIL ${label}: outputs differ at byte ${at}\n` +
      `  expected: ${JSON.stringify(want.slice(Math.max(0, at - 40), at + 80))}\n` +
      `  actual:   ${JSON.stringify(got.output.slice(Math.max(0, at - 40), at + 80))}`);
  });
}
console.log(`chat-template-conformance: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
