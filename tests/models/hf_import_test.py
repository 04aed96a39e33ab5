#!/usr/bin/python3
"""hf_import_test.py - `airlock import` of Hugging Face checkpoints, checked
against an independent PyTorch forward pass.

For each architecture (llama with Llama 3.1 rope scaling and sharded F32
weights, mistral with a byte-fallback BPE tokenizer in BF16, qwen2 with biases
and tied embeddings in F16, qwen3 with q/k norms and head_dim != hidden/heads
in BF16) this script writes a tiny checkpoint directory the way Hugging Face
does (config.json, safetensors written here by hand, tokenizer.json rebuilt
from a real vocabulary in ../shared/models, tokenizer_config.json with a chat
template, generation_config.json), imports it, and compares:
  - logits: a PyTorch forward pass written here from the Hugging Face
    modelling conventions (rotate_half rope on un-permuted weights, GQA by
    repetition, float64) against airlock's, via `airlock kl-divergence
    --base-logits` (max |logit difference|, KL, top-1 agreement);
  - tokenization: the imported tokenizer against llama.cpp's reference ids
    for the same vocabulary (tokenizer-fixtures/*.inp/.out);
  - metadata: architecture, pre-tokenizer name, special ids, chat template;
  - hostile checkpoints: each gets a clear error and leaves no output file.

usage: hf_import_test.py AIRLOCK_BINARY MODELS_DIR
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from ref_llm import read_gguf  # noqa: E402  (the reference GGUF reader)

AIRLOCK, MODELS = sys.argv[1], sys.argv[2]
FIX = os.path.join(MODELS, "tokenizer-fixtures")
TMP = tempfile.mkdtemp(prefix="airlock-hf-")
FAILS = []

RE_LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
RE_QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def run(args):
    p = subprocess.run([AIRLOCK] + args, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


# ---- safetensors, written as the format's documentation describes ---------------------

DT = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors, header_edit=None, data_edit=None):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        b = tensor_bytes(t)
        header[name] = {"dtype": DT[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if header_edit:
        header_edit(header)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    data = b"".join(blobs)
    if data_edit:
        data = data_edit(data)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


# ---- tokenizer.json rebuilt from a real vocabulary ---------------------------------------

def bytelevel_tokenizer(pre, n_extra_special):
    meta, _, _ = read_gguf(os.path.join(FIX, "ggml-vocab-gpt-2.gguf"))
    toks, types, merges = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"], meta["tokenizer.ggml.merges"]
    vocab = {t: i for i, t in enumerate(toks)}
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
             for i, t in enumerate(toks) if types[i] == 3]
    extra = ["<|im_start|>", "<|im_end|>"][:n_extra_special]
    for k, t in enumerate(extra):
        added.append({"id": len(toks) + k, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True})
    if pre == "gpt2":
        pt = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    else:
        pt = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": RE_LLAMA3 if pre == "llama3" else RE_QWEN2}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
          "pre_tokenizer": pt, "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
          "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
          "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "", "end_of_word_suffix": "",
                    "fuse_unk": False, "byte_fallback": False, "ignore_merges": False, "vocab": vocab,
                    "merges": [m.split(" ", 1) for m in merges]}}
    return tj, len(toks) + len(extra)


def spm_tokenizer():
    """Llama 2's SentencePiece vocabulary as Hugging Face stores it: BPE with
    byte fallback, merges ordered by the merged piece's score."""
    meta, _, _ = read_gguf(os.path.join(FIX, "ggml-vocab-llama-spm.gguf"))
    toks, scores, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.scores"], meta["tokenizer.ggml.token_type"]
    vocab = {t: i for i, t in enumerate(toks)}
    merges = []
    for i in sorted(range(len(toks)), key=lambda i: -scores[i]):
        t = toks[i]
        if types[i] != 1 or len(t) < 2:
            continue
        cands = [(vocab[t[:k]], vocab[t[k:]], t[:k], t[k:]) for k in range(1, len(t)) if t[:k] in vocab and t[k:] in vocab]
        for a, b, sa, sb in sorted(cands):
            merges.append([sa, sb])
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
             for i, t in enumerate(toks) if types[i] in (2, 3)]
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
          "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                             {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
          "pre_tokenizer": None,
          "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                                                     {"Sequence": {"id": "A", "type_id": 0}}]},
          "decoder": None,
          "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None, "end_of_word_suffix": None,
                    "fuse_unk": True, "byte_fallback": True, "vocab": vocab, "merges": merges}}
    return tj, len(toks)


# ---- random checkpoints and the Hugging Face forward pass ---------------------------------

def make_weights(cfg, arch, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    E, F, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or E // nh
    V = cfg["vocab_size"]

    def mat(o, i):
        return (torch.randn(o, i, generator=g) / i ** 0.5).to(dtype)

    def norm(n):
        return (1 + 0.1 * torch.randn(n, generator=g)).to(dtype)

    w = {"model.embed_tokens.weight": torch.randn(V, E, generator=g).to(dtype)}
    for l in range(L):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = norm(E)
        w[p + "self_attn.q_proj.weight"] = mat(nh * hd, E)
        w[p + "self_attn.k_proj.weight"] = mat(nkv * hd, E)
        w[p + "self_attn.v_proj.weight"] = mat(nkv * hd, E)
        if arch == "qwen2":
            for n, d in (("q", nh * hd), ("k", nkv * hd), ("v", nkv * hd)):
                w[p + f"self_attn.{n}_proj.bias"] = (0.1 * torch.randn(d, generator=g)).to(dtype)
        if arch == "qwen3":
            w[p + "self_attn.q_norm.weight"] = norm(hd)
            w[p + "self_attn.k_norm.weight"] = norm(hd)
        w[p + "self_attn.o_proj.weight"] = mat(E, nh * hd)
        w[p + "post_attention_layernorm.weight"] = norm(E)
        w[p + "mlp.gate_proj.weight"] = mat(F, E)
        w[p + "mlp.up_proj.weight"] = mat(F, E)
        w[p + "mlp.down_proj.weight"] = mat(E, F)
        w[p + "self_attn.rotary_emb.inv_freq"] = torch.ones(hd // 2, dtype=torch.float32)  # old checkpoints carry it
    w["model.norm.weight"] = norm(E)
    if not cfg.get("tie_word_embeddings", False):
        w["lm_head.weight"] = (torch.randn(V, E, generator=g) / E ** 0.5).to(dtype)
    return w


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def inv_freq(cfg, hd):
    f = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type") == "llama3":
        factor, lo, hi, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
        wavelen = 2 * np.pi / f
        scaled = torch.where(wavelen > old / lo, f / factor, f)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= old / hi) & (wavelen <= old / lo)
        f = torch.where(medium, smoothed, scaled)
    return f


def hf_forward(cfg, arch, w, tokens):
    W = {k: v.to(torch.float64) for k, v in w.items()}
    E, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or E // nh
    eps = cfg["rms_norm_eps"]
    T = len(tokens)
    x = W["model.embed_tokens.weight"][torch.tensor(tokens)]
    ang = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq(cfg, hd))
    cos, sin = torch.cat((ang, ang), -1).cos()[:, None, :], torch.cat((ang, ang), -1).sin()[:, None, :]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for l in range(L):
        p = f"model.layers.{l}."
        h = rmsnorm(x, W[p + "input_layernorm.weight"], eps)
        q, k, v = (h @ W[p + f"self_attn.{n}_proj.weight"].T for n in "qkv")
        if arch == "qwen2":
            q, k, v = q + W[p + "self_attn.q_proj.bias"], k + W[p + "self_attn.k_proj.bias"], v + W[p + "self_attn.v_proj.bias"]
        q, k, v = q.view(T, nh, hd), k.view(T, nkv, hd), v.view(T, nkv, hd)
        if arch == "qwen3":
            q, k = rmsnorm(q, W[p + "self_attn.q_norm.weight"], eps), rmsnorm(k, W[p + "self_attn.k_norm.weight"], eps)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = k.repeat_interleave(nh // nkv, dim=1), v.repeat_interleave(nh // nkv, dim=1)
        att = torch.einsum("thd,shd->hts", q, k) / hd ** 0.5 + mask
        o = torch.einsum("hts,shd->thd", att.softmax(-1), v).reshape(T, nh * hd)
        x = x + o @ W[p + "self_attn.o_proj.weight"].T
        h = rmsnorm(x, W[p + "post_attention_layernorm.weight"], eps)
        g, u = h @ W[p + "mlp.gate_proj.weight"].T, h @ W[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(g) * u) @ W[p + "mlp.down_proj.weight"].T
    x = rmsnorm(x, W["model.norm.weight"], eps)
    out = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    return (x @ out.T).to(torch.float32)


def write_logits(path, tokens, logits):
    """airlock's logits file (models/perplexity.h): every position but the last."""
    T, V = logits.shape
    with open(path, "wb") as f:
        f.write(b"ALLG" + struct.pack("<5I", 1, V, T, 0, 1))
        f.write(np.asarray(tokens, dtype=np.int32).tobytes())
        f.write(logits[: T - 1].numpy().astype(np.float32).tobytes())


# ---- the four checkpoints -----------------------------------------------------------

def base_cfg(arch_name, model_type, V, **kw):
    c = {"architectures": [arch_name], "model_type": model_type, "hidden_size": 128, "intermediate_size": 256,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": V, "rms_norm_eps": 1e-5,
         "rope_theta": 10000.0, "max_position_embeddings": 2048, "tie_word_embeddings": False, "torch_dtype": "float32"}
    c.update(kw)
    return c


def write_checkpoint(d, cfg, arch, dtype, tj, tcfg, shards=1, seed=1, gen=None):
    os.makedirs(d, exist_ok=True)
    w = make_weights(cfg, arch, dtype, seed)
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
    json.dump(tj, open(os.path.join(d, "tokenizer.json"), "w"))
    json.dump(tcfg, open(os.path.join(d, "tokenizer_config.json"), "w"))
    if gen:
        json.dump(gen, open(os.path.join(d, "generation_config.json"), "w"))
    names = list(w)
    if shards == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), w)
    else:
        wmap = {}
        for s in range(shards):
            fn = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = {n: w[n] for n in names[s::shards]}
            write_safetensors(os.path.join(d, fn), part)
            wmap.update({n: fn for n in part})
        json.dump({"metadata": {}, "weight_map": wmap}, open(os.path.join(d, "model.safetensors.index.json"), "w"))
    return w


def token_check(gguf, fixture, what):
    inp = open(os.path.join(FIX, fixture + ".inp"), encoding="utf-8").read().split("\n__ggml_vocab_test__\n")
    out = open(os.path.join(FIX, fixture + ".out"), encoding="utf-8").read().split("\n")
    bad = 0
    for i, s in enumerate(inp):
        fn = os.path.join(TMP, "tok.txt")
        open(fn, "w", encoding="utf-8").write(s)
        rc, so, se = run(["tokenize", "-m", gguf, "--ids", "--no-special", "-f", fn])
        if rc != 0 or so.split() != out[i].split():
            bad += 1
            if bad <= 3:
                print(f"  string {i} {s[:40]!r}: want {out[i].strip()[:80]} got {so.strip()[:80]} {se.strip()[:200]}")
    check(bad == 0, f"{what}: tokenization of {len(inp)} reference strings matches llama.cpp's ids ({bad} differ)")


def meta_of(gguf):
    return read_gguf(gguf)[0]


def compare_logits(name, d, cfg, arch, w, gguf, V, tol):
    g = torch.Generator().manual_seed(7)
    tokens = torch.randint(0, min(V, 30000), (40,), generator=g).tolist()
    ref = hf_forward(cfg, arch, w, tokens)
    lf = os.path.join(d, "torch.logits")
    write_logits(lf, tokens, ref)
    rc, so, se = run(["kl-divergence", "-m", gguf, "--base-logits", lf, "--kv-type", "f32", "--json", "-t", "2"])
    check(rc == 0, f"{name}: kl-divergence runs ({se.strip()[-200:]})")
    if rc != 0:
        return
    r = json.loads(so)
    scale = float(ref.abs().max())
    print(f"  {name}: max |logit| {scale:.3f}, max |d logit| {r['max_abs_dlogit']:.2e}, mean KL {r['kld_mean']:.2e}, "
          f"same top {r['same_top']:.3f}")
    check(r["max_abs_dlogit"] <= tol * max(1.0, scale), f"{name}: logits match PyTorch within {tol} x max|logit|")
    check(r["same_top"] == 1.0, f"{name}: the same top token at every position")


def main():
    results = {}
    # llama: Llama 3.1 rope scaling, GQA, untied, F32, two shards, llama3 pre-tokenizer
    tj, nt = bytelevel_tokenizer("llama3", 0)
    cfg = base_cfg("LlamaForCausalLM", "llama", 50304, rope_theta=500000.0,
                   rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                 "original_max_position_embeddings": 64})
    d = os.path.join(TMP, "llama")
    w = write_checkpoint(d, cfg, "llama", torch.float32, tj, {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                                                             "add_bos_token": True}, shards=2)
    results["llama"] = (d, cfg, "llama", w, 50304, 2e-4)
    # mistral: SentencePiece-style BPE with byte fallback, BF16
    tj, nt = spm_tokenizer()
    cfg = base_cfg("MistralForCausalLM", "mistral", nt, sliding_window=None, torch_dtype="bfloat16")
    d = os.path.join(TMP, "mistral")
    w = write_checkpoint(d, cfg, "llama", torch.bfloat16, tj, {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                                                              "add_bos_token": True, "add_eos_token": False}, seed=2)
    results["mistral"] = (d, cfg, "llama", w, nt, 2e-3)
    # qwen2: biases, tied embeddings, F16, ChatML template, 2 extra specials, padded vocabulary
    tj, nt = bytelevel_tokenizer("qwen2", 2)
    cfg = base_cfg("Qwen2ForCausalLM", "qwen2", 50304, tie_word_embeddings=True, rope_theta=1000000.0, rms_norm_eps=1e-6,
                   torch_dtype="float16")
    d = os.path.join(TMP, "qwen2")
    w = write_checkpoint(d, cfg, "qwen2", torch.float16, tj, {"bos_token": None, "eos_token": "<|im_end|>",
                                                             "pad_token": "<|endoftext|>", "chat_template": CHATML}, seed=3,
                         gen={"bos_token_id": 50256, "eos_token_id": [50258, 50256]})
    results["qwen2"] = (d, cfg, "qwen2", w, 50304, 2e-3)
    # qwen3: q/k norms, head_dim 64 with 4 heads over hidden 128, BF16, GPT-2 pre-tokenizer
    tj, nt = bytelevel_tokenizer("gpt2", 0)
    cfg = base_cfg("Qwen3ForCausalLM", "qwen3", nt, head_dim=64, torch_dtype="bfloat16")
    d = os.path.join(TMP, "qwen3")
    w = write_checkpoint(d, cfg, "qwen3", torch.bfloat16, tj, {"eos_token": "<|endoftext|>"}, seed=4)
    results["qwen3"] = (d, cfg, "qwen3", w, nt, 2e-3)

    for name, (d, cfg, arch, w, V, tol) in results.items():
        gguf = os.path.join(TMP, name + ".gguf")
        rc, so, se = run(["import", d, "-o", gguf, "-q"])
        check(rc == 0, f"{name}: import succeeds ({se.strip()[-300:]})")
        if rc != 0:
            continue
        compare_logits(name, d, cfg, arch, w, gguf, V, tol)
        m = meta_of(gguf)
        want_arch = "llama" if arch == "llama" else arch
        check(m["general.architecture"] == want_arch, f"{name}: general.architecture is {want_arch}")
        check(len(m["tokenizer.ggml.tokens"]) == V, f"{name}: {V} tokens (padded to the embedding)")
        want_ft = {"llama": 0, "mistral": 32, "qwen2": 1, "qwen3": 32}[name]  # F32, BF16, F16: the checkpoint's precision
        check(m["general.file_type"] == want_ft, f"{name}: general.file_type {want_ft}")
        if name == "llama":
            check(m["tokenizer.ggml.pre"] == "llama3" and m["tokenizer.ggml.model"] == "gpt2", f"{name}: pre-tokenizer llama3 detected")
            check(m["tokenizer.ggml.add_bos_token"] is True and m["tokenizer.ggml.bos_token_id"] == 50256, f"{name}: BOS added")
        if name == "qwen2":
            check(m["tokenizer.ggml.pre"] == "qwen2", f"{name}: pre-tokenizer qwen2 detected")
            check(m["tokenizer.chat_template"] == CHATML, f"{name}: chat template kept")
            check(m["tokenizer.ggml.eos_token_id"] == 50258 and m["tokenizer.ggml.eot_token_id"] == 50256,
                  f"{name}: eos <|im_end|>, second generation eos as eot")
            check(m["tokenizer.ggml.add_bos_token"] is False, f"{name}: no BOS (bos_token null)")
            check("output.weight" not in read_gguf(gguf)[1], f"{name}: tied embedding, no output.weight")
            types = m["tokenizer.ggml.token_type"]
            check(types[50257] == 3 and types[50258] == 3 and types[50300] == 5, f"{name}: added specials control, padding unused")
        if name == "qwen3":
            token_check(gguf, "ggml-vocab-gpt-2.gguf", name)
        if name == "mistral":
            check(m["tokenizer.ggml.model"] == "llama" and m["tokenizer.ggml.add_space_prefix"] is True,
                  f"{name}: byte-fallback BPE becomes the SentencePiece llama model")
            token_check(gguf, "ggml-vocab-llama-spm.gguf", name)

    # import straight to a quantized type: close to the F16 import
    d, cfg, arch, w, V, _ = results["qwen2"]
    q = os.path.join(TMP, "qwen2-q8.gguf")
    rc, so, se = run(["import", d, "-o", q, "--type", "Q8_0", "-q"])
    check(rc == 0, "qwen2: import --type Q8_0")
    if rc == 0:
        rc, so, se = run(["kl-divergence", "-m", q, "--base-logits", os.path.join(d, "torch.logits"), "--json"])
        r = json.loads(so) if rc == 0 else {"kld_mean": 1e9}
        check(r["kld_mean"] < 0.01, f"qwen2 Q8_0 import: mean KL vs PyTorch {r['kld_mean']:.2e} < 0.01")

    hostile(results)
    print(f"{len(FAILS)} failure(s)")
    sys.exit(1 if FAILS else 0)


def hostile(results):
    """Broken checkpoints: a clear error naming the problem, no output file."""
    import shutil
    src = results["qwen2"][0]
    base_w = make_weights(results["qwen2"][1], "qwen2", torch.float16, 3)

    def case(label, mutate, expect):
        d = os.path.join(TMP, "bad-" + label.replace(" ", "-"))
        shutil.copytree(src, d)
        mutate(d)
        out = os.path.join(TMP, "bad.gguf")
        rc, so, se = run(["import", d, "-o", out, "-q"])
        ok = rc == 1 and expect in se and not os.path.exists(out) and not os.path.exists(out + ".tmp")
        check(ok, f"hostile checkpoint, {label}: error mentions '{expect}'" + ("" if ok else f" (rc {rc}: {se.strip()[-300:]})"))

    st = lambda d: os.path.join(d, "model.safetensors")  # noqa: E731

    def drop(name):
        return lambda d: write_safetensors(st(d), {k: v for k, v in base_w.items() if k != name})

    def edit_header(fn):
        return lambda d: write_safetensors(st(d), base_w, header_edit=fn)

    def set_cfg(k, v):
        def f(d):
            c = json.load(open(os.path.join(d, "config.json")))
            c[k] = v
            json.dump(c, open(os.path.join(d, "config.json"), "w"))
        return f

    def raw(b):
        return lambda d: open(st(d), "wb").write(b)

    case("missing tensor", drop("model.layers.1.mlp.up_proj.weight"), "model.layers.1.mlp.up_proj.weight")
    case("wrong shape", set_cfg("intermediate_size", 512), "has shape")
    case("unknown arch", set_cfg("architectures", ["GPT2LMHeadModel"]), "not supported")
    case("extra tensor", lambda d: write_safetensors(st(d), dict(base_w, **{"model.vision.weight": torch.zeros(4, dtype=torch.float16)})),
         "not part of")
    case("offsets past EOF", edit_header(lambda h: h["model.norm.weight"].__setitem__("data_offsets", [0, 10 ** 9])), "past the end")
    case("overlapping tensors", edit_header(lambda h: h["model.layers.0.input_layernorm.weight"].__setitem__(
        "data_offsets", list(h["model.embed_tokens.weight"]["data_offsets"][:1]) +
        [h["model.embed_tokens.weight"]["data_offsets"][0] + 256])), "overlap")
    case("dtype/shape mismatch", edit_header(lambda h: h["model.norm.weight"].__setitem__("dtype", "F32")), "needs")
    case("unknown dtype", edit_header(lambda h: h["model.norm.weight"].__setitem__("dtype", "Q4")), "unknown dtype")
    case("bad header JSON", raw(struct.pack("<Q", 12) + b'{"a": [1, 2' + b" " + b"\0" * 64), "header JSON")
    case("header length past EOF", raw(struct.pack("<Q", 1 << 40) + b"{}"), "exceeds")
    case("truncated file", raw(b"\x05\x00"), "too short")
    case("duplicate key", raw(struct.pack("<Q", 88) + b'{"x": {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]}, '
                                                        b'"x": {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]}}  ' + b"\0\0"),
         "duplicate")
    case("pickle only", lambda d: (os.remove(st(d)), open(os.path.join(d, "pytorch_model.bin"), "wb").write(b"PK")), "pickle")
    case("index escapes the directory", lambda d: (os.remove(st(d)), json.dump({"weight_map": {"model.norm.weight": "../x.safetensors"}},
                                                                                open(os.path.join(d, "model.safetensors.index.json"), "w"))),
         "not a file name")
    case("config not JSON", lambda d: open(os.path.join(d, "config.json"), "w").write("{nope"), "config.json")
    case("tokenizer too large for embedding", set_cfg("vocab_size", 50000), "has shape")


if __name__ == "__main__":
    main()
