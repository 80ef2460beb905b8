#!/usr/bin/python3
# tests/ref/forward_ref.py - an independent float32 numpy reference of the
# decoder forward pass (Llama, Mistral with its sliding window, Qwen2, Qwen3), used by
# tests/integration/engine-forward.sh to check llmd-engine's logits.
#
# It reads the Hugging Face model directory itself (config.json, safetensors
# via json + numpy; BF16 as uint16 << 16), runs the whole token sequence
# (prompt + the engine's output) through the model at once with a causal
# mask, and compares, for each generation step i, the engine's dumped logits
# with the reference logits at position n_prompt - 1 + i, and the engine's
# token with the reference's argmax.
#
# Tolerance (documented in engine-forward.sh): |engine - ref| <= ATOL + RTOL * |ref|
# element-wise; a token may differ from the argmax only where the reference's
# top-2 margin is below TIE (a near-tie).
#
# usage: forward_ref.py MODEL_DIR PROMPT_IDS_JSON OUTPUT_IDS_JSON LOGITS_F32_FILE
import json
import math
import os
import sys

import numpy as np

ATOL = 2e-3
RTOL = 2e-3
TIE = 1e-2


def load_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, d in header.items():
        if name == "__metadata__":
            continue
        b, e = d["data_offsets"]
        raw = data[b:e]
        if d["dtype"] == "BF16":
            a = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif d["dtype"] == "F16":
            a = np.frombuffer(raw, dtype=np.float16).astype(np.float32)
        elif d["dtype"] == "F32":
            a = np.frombuffer(raw, dtype=np.float32).copy()
        else:
            raise ValueError("dtype " + d["dtype"])
        out[name] = a.reshape(d["shape"])
    return out


def load_weights(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        w = {}
        for shard in sorted(set(json.load(open(index))["weight_map"].values())):
            w.update(load_safetensors(os.path.join(model_dir, shard)))
        return w
    return load_safetensors(os.path.join(model_dir, "model.safetensors"))


def rms_norm(x, w, eps):
    # x (..., d), w (d)
    var = np.mean(x.astype(np.float64) ** 2, axis=-1, keepdims=True)
    return (x / np.sqrt(var + eps)).astype(np.float32) * w


def rope_inv_freq(cfg, hd):
    theta = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / (theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))  # (hd/2)
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) == "llama3":
        factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wl, high_wl = old / low, old / high
        wl = 2 * math.pi / inv
        scaled = np.where(wl > low_wl, inv / factor, inv)
        smooth = (old / wl - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wl >= high_wl) & (wl <= low_wl)
        inv = np.where(medium, smoothed, scaled)
    return inv.astype(np.float32).astype(np.float64)


def apply_rope(x, pos, inv):
    # x (n, heads, hd); rotate-half: (x1, x2) -> (x1 c - x2 s, x2 c + x1 s)
    ang = pos[:, None].astype(np.float64) * inv[None, :]  # (n, hd/2)
    c = np.cos(ang).astype(np.float32)[:, None, :]
    s = np.sin(ang).astype(np.float32)[:, None, :]
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)


def forward(cfg, w, ids):
    arch = cfg["architectures"][0]
    D = cfg["hidden_size"]
    H = cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads", H)
    HD = cfg.get("head_dim") or D // H
    eps = cfg.get("rms_norm_eps", 1e-6)
    n = len(ids)
    pos = np.arange(n)
    inv = rope_inv_freq(cfg, HD)
    bias = arch == "Qwen2ForCausalLM" or cfg.get("attention_bias", False)
    qk_norm = arch == "Qwen3ForCausalLM"
    mask = np.triu(np.full((n, n), -np.inf, dtype=np.float32), 1)  # (n, n) causal
    window = cfg.get("sliding_window") if arch == "MistralForCausalLM" else None
    if window:
        # query i sees keys i - window + 1 .. i
        mask[np.tril_indices(n, -window)] = -np.inf

    x = w["model.embed_tokens.weight"][ids]  # (n, D)
    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = h @ w[p + "self_attn.q_proj.weight"].T  # (n, H*HD)
        k = h @ w[p + "self_attn.k_proj.weight"].T  # (n, KV*HD)
        v = h @ w[p + "self_attn.v_proj.weight"].T  # (n, KV*HD)
        if bias:
            q = q + w[p + "self_attn.q_proj.bias"]
            k = k + w[p + "self_attn.k_proj.bias"]
            v = v + w[p + "self_attn.v_proj.bias"]
        q = q.reshape(n, H, HD)
        k = k.reshape(n, KV, HD)
        v = v.reshape(n, KV, HD)
        if qk_norm:
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q = apply_rope(q, pos, inv)
        k = apply_rope(k, pos, inv)
        rep = H // KV
        k = np.repeat(k, rep, axis=1)  # (n, H, HD)
        v = np.repeat(v, rep, axis=1)
        att = np.einsum("qhd,khd->hqk", q, k) / np.float32(math.sqrt(HD)) + mask  # (H, n, n)
        att = att - att.max(axis=-1, keepdims=True)
        att = np.exp(att)
        att = att / att.sum(axis=-1, keepdims=True)
        o = np.einsum("hqk,khd->qhd", att, v).reshape(n, H * HD)  # (n, H*HD)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = h @ w[p + "mlp.gate_proj.weight"].T  # (n, F)
        u = h @ w[p + "mlp.up_proj.weight"].T
        a = (g / (1 + np.exp(-g))) * u
        x = x + a @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w.get("lm_head.weight")
    if head is None or cfg.get("tie_word_embeddings") and "lm_head.weight" not in w:
        head = w["model.embed_tokens.weight"]
    return x @ head.T  # (n, V)


def main():
    model_dir, prompt_s, out_s, logits_file = sys.argv[1:5]
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = load_weights(model_dir)
    prompt = json.loads(prompt_s)
    out = json.loads(out_s)
    V = cfg["vocab_size"]
    eng = np.fromfile(logits_file, dtype=np.float32).reshape(-1, V)  # (steps, V)
    if eng.shape[0] != len(out):
        print("FAIL: %d logit rows for %d output tokens" % (eng.shape[0], len(out)))
        return 1
    ref = forward(cfg, w, np.array(prompt + out[:-1], dtype=np.int64))
    ref = ref[len(prompt) - 1:]  # (steps, V): logits that chose out[i]
    worst = 0.0
    fails = 0
    for i in range(len(out)):
        err = np.abs(eng[i] - ref[i])
        lim = ATOL + RTOL * np.abs(ref[i])
        worst = max(worst, float(np.max(err)))
        if np.any(err > lim):
            j = int(np.argmax(err - lim))
            print("FAIL: step %d token %d: engine %.6f ref %.6f" % (i, j, eng[i][j], ref[i][j]))
            fails += 1
        top = np.argsort(ref[i])[::-1][:2]
        margin = float(ref[i][top[0]] - ref[i][top[1]])
        if out[i] != int(top[0]) and margin >= TIE:
            print("FAIL: step %d: engine chose %d, reference argmax %d (margin %.4f)"
                  % (i, out[i], int(top[0]), margin))
            fails += 1
    print("max |logit diff| %.2e over %d steps, vocab %d" % (worst, len(out), V))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
