// tests/node/corpus.mjs - hard strings for the tokenizer conformance test:
// scripts (CJK, Arabic, Hindi, Thai, Korean, ...), emoji ZWJ sequences,
// combining marks and NFC/NFD pairs, digit runs, contractions, whitespace
// runs, code, special-token-looking text and very long words.

const base = [
  // plain English and contractions
  "Hello world", "Hello World!", "hello", " hello", "  hello", "hello ", "hello  ",
  "The quick brown fox jumps over the lazy dog.",
  "It's", "it's", "IT'S", "He's here", "HE'S HERE", "don't", "DON'T", "Don'T",
  "they're", "THEY'RE", "we've", "WE'VE", "I'm", "I'M", "you'll", "YOU'LL", "I'd", "I'D",
  "'s", "'S", "'t", "'re", "'ve", "'m", "'ll", "'d", "''s", "'ss", "x's y's", "John'S",
  "rock 'n' roll", "o'clock", "'tis the season", "She said 'hello'",
  "Mr. O'Neil's dog's bone", "the 90's", "abc'def", "can't won't shouldn't",
  // digits
  "1", "12", "123", "1234", "12345", "123456789", "3.14159", "1,000,000", "2026-11-25",
  "0x1F600", "v1.2.3-rc4", "$1,234.56", "100%", "1e10", "١٢٣٤٥", "१२३४५", "一二三", "①②③",
  "x2 y22 z222 w2222", "007", "12:30:45", "+1 (555) 123-4567", "a1b2c3d4e5",
  // whitespace
  "\n", "\n\n", "\n\n\n", " ", "  ", "   ", "\t", "\t\t", "\r\n", "\r\n\r\n", "\r", " \n",
  "\n ", " \n \n ", "a\nb", "a\n\nb", "a \n b", "a\tb", "a\t\tb", "a  b", "a   b",
  "line1\r\nline2\r\n", "  leading", "trailing  ", "\t\tindented\n\t\tcode", "x \t \n y",
  "\u00a0nbsp\u00a0", "ideographic\u3000space", "thin\u2009space", "zero\u200bwidth",
  "end with newline\n", "mixed \n\t \r\n  end",
  // CJK, Korean, Japanese
  "你好，世界", "我爱自然语言处理。", "中文分词测试：今天天气很好！", "繁體中文測試",
  "こんにちは世界", "カタカナとひらがな", "東京都渋谷区", "안녕하세요 세계",
  "한국어 형태소 분석", "漢字かな交じり文", "𠀀𠀁𠀂 rare CJK ext B", "龘靐齉",
  // Arabic, Hebrew, Hindi, Thai, others
  "مرحبا بالعالم", "السلام عليكم ورحمة الله", "العربية: ١٢٣", "שלום עולם",
  "नमस्ते दुनिया", "हिन्दी में लिखा गया पाठ", "क्षत्रिय", "สวัสดีชาวโลก",
  "ภาษาไทยไม่มีการเว้นวรรค", "Привет, мир!", "Ελληνικά γράμματα", "Ωμέγα",
  "Tiếng Việt có dấu", "ქართული", "Հայերեն", "አማርኛ", "தமிழ்", "বাংলা ভাষা",
  "ᚠᚢᚦᚨᚱᚲ", "ʕ•ᴥ•ʔ", "Ünïcödé Äpfel", "straße STRASSE", "ǅungla", "ﬁne ﬂour",
  // emoji
  "😀", "😀😀😀", "👍🏽", "👨‍👩‍👧‍👦", "👩🏽‍💻", "🏳️‍🌈", "🇺🇸🇯🇵", "❤️", "✌🏿",
  "I love 🍕 and 🍣!", "🧑‍🤝‍🧑 together", "🫠🫡🫶", "#️⃣ keycap", "a😀b",
  // combining marks, NFC/NFD pairs
  "café", "cafe\u0301", "e\u0301", "\u00e9", "A\u030a", "\u00c5ngstr\u00f6m",
  "\u212b", "n\u0303", "ñ", "Zalgo: Z\u0351\u036b\u0343a\u0310l\u0357g\u0344o\u0352",
  "\u1e9b\u0323", "\u0071\u0307\u0323", "ḱṷṓn", "한\u1100\u1161", "\u1112\u1161\u11ab",
  "ﾊﾝｶｸ", "Ｆｕｌｌｗｉｄｔｈ", "x\u0300\u0301\u0302\u0303", "\u0300 leading mark",
  // code
  "def f(x):\n    return x**2\n", "int main(void) { return 0; }",
  "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}",
  "const x = () => { console.log(`hi ${name}`); };",
  "SELECT * FROM users WHERE id = 42;", "<div class=\"a\">text</div>",
  "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}", "#include <stdio.h>",
  "if (a && b || !c) { x >>= 2; }", "git commit -m \"fix: bug\"",
  "https://example.com/path?q=1&r=2#frag", "user@example.com",
  "    indented four\n        indented eight", "a_b_c snake_case camelCase PascalCase",
  "__init__", "--flag=value", "~/.bashrc", "C:\\Windows\\System32", "$HOME/bin:$PATH",
  "x!=y", "a==b", "...", "?!?!", "!!!", "---", "***", "___", "(((", ")))",
  // special-token-looking text
  "<|im_start|>", "<|im_end|>", "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
  "<|begin_of_text|>", "<|begin_of_text|>Hello", "<|end_of_text|>", "<|eot_id|>",
  "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", "<|endoftext|>",
  "<s>", "</s>", "<unk>", "<s>Hello</s>", "<|im_start", "im_start|>", "<||>", "<|>",
  "text<|im_end|>text", " <|im_end|> ", "<|im_start|><|im_start|>", "<|fim_prefix|>x<|fim_suffix|>",
  "hello <mask> world", "x   <mask>", "<mask>", " <mask> ", "\t<mask>\n", "<rs>  y", "a<rs>\n\nb",
  "<mask><rs> z", "a <rs> <mask> b",
  "say hello world", "hello worlds", "hello  world", "\u03a9mega \u03a9mega", "x\u03a9mega",
    "<think>\nreasoning\n</think>", "<tool_call>{}</tool_call>", "<|reserved_special_token_5|>",
  // punctuation
  "Hello, world... isn't it?", "«Bonjour» — dit-il", "“quoted” ‘single’", "¿Qué? ¡Sí!",
  "a—b–c", "…", "•bullet", "§ 12 ¶ 3", "©®™", "½ ¼ ¾", "±×÷", "→ ← ↑ ↓", "∀x∈ℝ: x²≥0",
  // long words
  "a".repeat(300), "ab".repeat(200), "supercalifragilisticexpialidocious",
  "Donaudampfschifffahrtsgesellschaftskapitän", "pneumonoultramicroscopicsilicovolcanoconiosis",
  "x".repeat(1000) + " y", "字".repeat(200), "😀".repeat(50), " ".repeat(100), "\n".repeat(50),
  "1".repeat(100), "-".repeat(120), "ab1".repeat(100), "Ā".repeat(64),
  "antidisestablishmentarianism" + "ism".repeat(30),
];

// A few mixed paragraphs.
const paragraphs = [
  "In 2024, the model achieved 93.5% accuracy on the benchmark; however, it's not clear whether the result generalizes.",
  "Machine learning (ML) is a field of study in artificial intelligence concerned with the development of statistical algorithms.",
  "混合文本: English, 中文, 日本語, 한국어, العربية, हिन्दी and emoji 🎉 in one line.",
  "The API returns {\"status\": \"ok\"} with HTTP 200\r\nContent-Type: application/json\r\n\r\n",
  "  Multiple   spaces\tand\ttabs\n\n\nand newlines   \n",
  "Dear Sir/Madam,\n\nI'm writing to inform you that your order #12345 has shipped.\n\nBest regards,\nJohn",
  "ChatGPT said: \"I can't do that.\" User: \"Why NOT?\" — it's complicated...",
  "Ümlauts and accénts: naïve façade résumé coöperate",
];

export function corpus() {
  const out = [...base, ...paragraphs];
  // Case and spacing variants of short strings add coverage cheaply.
  for (const s of ["it's", "hello world", "你好", "café", "👍"]) {
    out.push(s.toUpperCase(), " " + s, s + "\n", "\t" + s + "\t");
  }
  return out;
}
