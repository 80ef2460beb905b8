// tests/node/make-sp-tokenizer.mjs - writes small SentencePiece-style BPE
// tokenizers (Llama-2 and Mistral layouts: metaspace "▁", byte_fallback,
// <s> from a TemplateProcessing) whose merges are learned here from a
// training text, so the conformance test can compare llmd with
// @huggingface/tokenizers on this family too.
import fs from "fs";
import path from "path";

const SP = "\u2581";

function train(text, nMerges) {
  const words = new Map();
  for (const w of (SP + text.replaceAll(" ", SP)).split(new RegExp(`(?=${SP})`))) {
    if (w) words.set(w, (words.get(w) || 0) + 1);
  }
  let seqs = [...words].map(([w, c]) => ({ syms: [...w], c }));
  const alphabet = new Set();
  for (const s of seqs) for (const ch of s.syms) alphabet.add(ch);
  const merges = [];
  for (let m = 0; m < nMerges; m++) {
    const counts = new Map();
    for (const s of seqs)
      for (let i = 0; i + 1 < s.syms.length; i++) {
        const k = s.syms[i] + "\u0000" + s.syms[i + 1];
        counts.set(k, (counts.get(k) || 0) + s.c);
      }
    let best = null, bc = 0;
    for (const [k, c] of counts) if (c > bc || (c === bc && k < best)) { best = k; bc = c; }
    if (!best || bc < 2) break;
    const [a, b] = best.split("\u0000");
    merges.push([a, b]);
    for (const s of seqs) {
      const out = [];
      for (let i = 0; i < s.syms.length; i++) {
        if (i + 1 < s.syms.length && s.syms[i] === a && s.syms[i + 1] === b) { out.push(a + b); i++; }
        else out.push(s.syms[i]);
      }
      s.syms = out;
    }
  }
  return { alphabet: [...alphabet].sort(), merges };
}

function build(text, layout) {
  const { alphabet, merges } = train(text, 400);
  const vocab = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  let id = 3;
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = id++;
  for (const ch of alphabet) if (!(ch in vocab)) vocab[ch] = id++;
  for (const [a, b] of merges) if (!(a + b in vocab)) vocab[a + b] = id++;
  const added = ["<unk>", "<s>", "</s>"].map((c, i) => ({
    id: i, content: c, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  // Added tokens that swallow the whitespace beside them (as <mask> does in
  // RoBERTa-style files): one special, one not.
  added.push({ id: id++, content: "<mask>", single_word: false, lstrip: true, rstrip: false,
    normalized: false, special: true });
  added.push({ id: id++, content: "<rs>", single_word: false, lstrip: false, rstrip: true,
    normalized: false, special: false });
  // normalized: true tokens are matched, by their normalized content, in the
  // normalized text (Llama-2 layout: "▁hello▁world").
  for (const content of ["hello world", "\u03a9mega"]) {
    added.push({ id: id++, content, single_word: false, lstrip: false, rstrip: false,
      normalized: true, special: false });
  }
  const post = {
    type: "TemplateProcessing",
    single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
    pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
      { SpecialToken: { id: "<s>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
    special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
  };
  const model = {
    type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null,
    end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab,
    // Llama-2 files carry "a b" strings, newer ones [a, b] pairs: test both.
    merges: layout === "llama2" ? merges.map(([a, b]) => `${a} ${b}`) : merges,
  };
  const spDecoder = { type: "Sequence", decoders: [
    { type: "Replace", pattern: { String: SP }, content: " " },
    { type: "ByteFallback" }, { type: "Fuse" },
    { type: "Strip", content: " ", start: 1, stop: 0 }] };
  if (layout === "llama2") {
    return {
      version: "1.0", truncation: null, padding: null, added_tokens: added,
      normalizer: { type: "Sequence", normalizers: [
        { type: "Prepend", prepend: SP },
        { type: "Replace", pattern: { String: " " }, content: SP }] },
      pre_tokenizer: null, post_processor: post,
      decoder: spDecoder,
      model,
    };
  }
  return {
    version: "1.0", truncation: null, padding: null, added_tokens: added, normalizer: null,
    pre_tokenizer: { type: "Metaspace", replacement: SP, prepend_scheme: "first", split: false },
    post_processor: post,
    decoder: spDecoder,
    model,
  };
}

export function writeSpTokenizer(dir, layout, trainingText) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(build(trainingText, layout)));
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify({
    add_bos_token: true, add_eos_token: false, bos_token: "<s>", eos_token: "</s>",
    unk_token: "<unk>", tokenizer_class: "LlamaTokenizer", clean_up_tokenization_spaces: false,
  }));
  return dir;
}
