#!/usr/bin/python3
"""ref_llm.py - an independent reference for airlock's LLaMA-family runner.

Written separately from the C code: its own GGUF reader, its own numpy
dequantization of every supported type (vectorised over blocks), and a
whole-sequence forward pass in float64 (causal attention as one matrix, not
the incremental KV-cache loop airlock uses).

usage: ref_llm.py MODEL.gguf --tokens 1,2,3 [--greedy N]
prints JSON: {"logits": [last position's logits], "greedy": [N token ids]}
"""
import argparse
import json
import struct
import sys

import numpy as np

# ---- GGUF reader -------------------------------------------------------------------

SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
# ggml type id -> (name, elements per block, bytes per block)
TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 30: ("BF16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
         6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 10: ("Q2_K", 256, 84),
         11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210)}


class Reader:
    def __init__(self, data):
        self.d = data
        self.p = 0

    def scalar(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)[0]
        self.p += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.scalar("<Q")
        s = self.d[self.p:self.p + n].decode("utf-8", "replace")
        self.p += n
        return s

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et = self.scalar("<I")
            n = self.scalar("<Q")
            return [self.value(et) for _ in range(n)]
        return self.scalar(SCALAR[t])


def read_gguf(path):
    data = open(path, "rb").read()
    r = Reader(data)
    assert data[:4] == b"GGUF", "not a GGUF file"
    r.p = 4
    version = r.scalar("<I")
    assert version in (2, 3)
    n_tensors = r.scalar("<Q")
    n_kv = r.scalar("<Q")
    meta = {}
    for _ in range(n_kv):
        k = r.string()
        meta[k] = r.value(r.scalar("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        nd = r.scalar("<I")
        ne = [r.scalar("<Q") for _ in range(nd)]
        t = r.scalar("<I")
        off = r.scalar("<Q")
        infos.append((name, ne, t, off))
    align = meta.get("general.alignment", 32)
    base = (r.p + align - 1) // align * align
    tensors, types = {}, {}
    for name, ne, t, off in infos:
        types[name] = TYPES[t][0]
        tname, bs, ts = TYPES[t]
        n = int(np.prod(ne))
        raw = np.frombuffer(data, dtype=np.uint8, count=n // bs * ts, offset=base + off)
        x = dequant(t, raw, n)
        tensors[name] = x.reshape(list(reversed(ne))) if len(ne) > 1 else x
    return meta, tensors, types


# ---- activation quantization (the documented semantics of the engines) ----------------
# Fast engines multiply quantized weights with activations quantized on the
# fly: for Q4_0/Q5_0/Q8_0 weights in blocks of 32, for Q4_K/Q6_K in blocks of
# 256, each block scaled by max|x|/127 and rounded to the nearest integer.
ACT_BLOCK = {"Q4_0": 32, "Q5_0": 32, "Q8_0": 32, "Q4_K": 256, "Q6_K": 256}


def quantize_act(x, wtype):
    bs = ACT_BLOCK.get(wtype)
    if bs is None:
        return x
    shp = x.shape
    b = x.reshape(-1, bs)
    d = np.abs(b).max(axis=1, keepdims=True) / 127.0
    q = np.clip(np.rint(np.divide(b, d, out=np.zeros_like(b), where=d > 0)), -127, 127)
    return (q * d).reshape(shp)


# ---- dequantization -------------------------------------------------------------------

def f16(b):
    return b.copy().view(np.float16).astype(np.float64)


def dequant(t, raw, n):
    name, bs, ts = TYPES[t]
    if name == "F32":
        return raw.view(np.float32).astype(np.float64)
    if name == "F16":
        return raw.view(np.float16).astype(np.float64)
    if name == "BF16":
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    b = raw.reshape(-1, ts)
    nb = b.shape[0]
    if name in ("Q4_0", "Q4_1", "Q5_0", "Q5_1"):
        d = f16(b[:, 0:2]).reshape(nb, 1)
        has_min = name.endswith("_1")
        m = f16(b[:, 2:4]).reshape(nb, 1) if has_min else 0.0
        o = 4 if has_min else 2
        high = None
        if name.startswith("Q5"):
            qh = b[:, o:o + 4].copy().view(np.uint32).reshape(nb, 1)
            high = ((qh >> np.arange(32, dtype=np.uint32)) & 1).astype(np.int64) << 4  # element j uses bit j
            o += 4
        qs = b[:, o:o + 16].astype(np.int64)
        q = np.concatenate([qs & 15, qs >> 4], axis=1)  # elements 0..15 low nibbles, 16..31 high
        if high is not None:
            q = q | high
        if has_min:
            return (q * d + m).reshape(-1)
        return ((q - (16 if name == "Q5_0" else 8)) * d).reshape(-1)
    if name == "Q8_0":
        d = f16(b[:, 0:2]).reshape(nb, 1)
        return (b[:, 2:34].view(np.int8).astype(np.float64) * d).reshape(-1)
    if name == "Q2_K":
        sc = b[:, 0:16].astype(np.int64)
        qs = b[:, 16:80].astype(np.int64).reshape(nb, 2, 32)         # two halves of 128
        d = f16(b[:, 80:82]).reshape(nb, 1)
        dmin = f16(b[:, 82:84]).reshape(nb, 1)
        shifts = np.array([0, 2, 4, 6]).reshape(1, 1, 4, 1)
        q = (qs.reshape(nb, 2, 1, 32) >> shifts) & 3                  # [nb, half, j, 32]
        q = q.reshape(nb, 256)                                         # element = half*128 + j*32 + l
        sub = np.arange(256) // 16                                     # scale index per element
        return (d * (sc[:, sub] & 15) * q - dmin * (sc[:, sub] >> 4)).reshape(-1)
    if name == "Q3_K":
        hm = b[:, 0:32].astype(np.int64)
        qs = b[:, 32:96].astype(np.int64).reshape(nb, 2, 32)
        ps = b[:, 96:108].astype(np.int64)
        d = f16(b[:, 108:110]).reshape(nb, 1)
        idx = np.arange(16)
        lo = np.where(idx < 8, ps[:, idx % 8] & 15, ps[:, idx % 8] >> 4)
        hi = (ps[:, 8 + idx % 4] >> (2 * (idx // 4))) & 3
        scales = (lo | (hi << 4)) - 32                                  # [nb, 16]
        shifts = np.array([0, 2, 4, 6]).reshape(1, 1, 4, 1)
        q = ((qs.reshape(nb, 2, 1, 32) >> shifts) & 3).reshape(nb, 256)
        e = np.arange(256)
        bit = (hm[:, e % 32] >> (e // 32)) & 1                          # half*4 + j == e // 32
        q = q - 4 * (1 - bit)
        return (d * scales[:, e // 16] * q).reshape(-1)
    if name in ("Q4_K", "Q5_K"):
        d = f16(b[:, 0:2]).reshape(nb, 1)
        dmin = f16(b[:, 2:4]).reshape(nb, 1)
        s = b[:, 4:16].astype(np.int64)
        j = np.arange(8)
        sc = np.where(j < 4, s[:, j % 4] & 63, (s[:, 8 + j % 4] & 15) | ((s[:, j % 4] >> 6) << 4))
        mn = np.where(j < 4, s[:, 4 + j % 4] & 63, (s[:, 8 + j % 4] >> 4) | ((s[:, 4 + j % 4] >> 6) << 4))
        o = 16
        if name == "Q5_K":
            qh = b[:, 16:48].astype(np.int64)
            o = 48
        ql = b[:, o:o + 128].astype(np.int64).reshape(nb, 4, 32)       # 4 groups of 64 elements
        q = np.concatenate([ql & 15, ql >> 4], axis=2).reshape(nb, 256)  # group g: 32 low then 32 high
        e = np.arange(256)
        if name == "Q5_K":
            q = q + 16 * ((qh[:, e % 32] >> (e // 32)) & 1)
        return (d * sc[:, e // 32] * q - dmin * mn[:, e // 32]).reshape(-1)
    if name == "Q6_K":
        ql = b[:, 0:128].astype(np.int64)
        qh = b[:, 128:192].astype(np.int64)
        sc = b[:, 192:208].view(np.int8).astype(np.int64)
        d = f16(b[:, 208:210]).reshape(nb, 1)
        e = np.arange(256)
        h, r = e // 128, e % 128
        k, l = r // 32, r % 32
        lob = ql[:, 64 * h + l + 32 * (k % 2)]
        lo = np.where(k < 2, lob & 15, lob >> 4)
        hi = (qh[:, 32 * h + l] >> (2 * k)) & 3
        q = (lo | (hi << 4)) - 32
        return (d * sc[:, e // 16] * q).reshape(-1)
    raise ValueError("unsupported type " + name)


# ---- model -------------------------------------------------------------------------------

def rmsnorm(x, g, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g


def rope(x, pos, dim, base, neox, factors, scale):
    # x: [T, heads, hd]
    half = dim // 2
    inv = base ** (-np.arange(half) * 2.0 / dim) * scale
    if factors is not None:
        inv = inv / factors
    ang = pos[:, None] * inv[None, :]                     # [T, half]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    y = x.copy()
    if neox:
        a, b = x[..., :half], x[..., half:dim]
        y[..., :half] = a * c - b * s
        y[..., half:dim] = a * s + b * c
    else:
        a, b = x[..., 0:dim:2], x[..., 1:dim:2]
        y[..., 0:dim:2] = a * c - b * s
        y[..., 1:dim:2] = a * s + b * c
    return y


class Model:
    def __init__(self, path):
        meta, t, self.types = read_gguf(path)
        arch = meta["general.architecture"]
        a = lambda k, d=None: meta.get(arch + "." + k, d)
        self.arch = arch
        self.E = a("embedding_length")
        self.L = a("block_count")
        self.H = a("attention.head_count")
        self.KV = a("attention.head_count_kv", self.H)
        self.hd = a("attention.key_length", self.E // self.H)
        self.rot = a("rope.dimension_count", self.hd)
        self.base = a("rope.freq_base", 10000.0)
        self.eps = a("attention.layer_norm_rms_epsilon", 1e-5)
        self.scale = 1.0
        if a("rope.scaling.type") == "linear":
            self.scale = 1.0 / a("rope.scaling.factor", 1.0)
        self.neox = arch in ("qwen2", "qwen3")
        self.t = t
        self.factors = t.get("rope_freqs.weight")
        self.out_name = "output.weight" if "output.weight" in t else "token_embd.weight"

    def mm(self, x, name):
        """x @ W.T with x quantized as the weight type's kernels quantize it."""
        return quantize_act(x, self.types[name]) @ self.t[name].T

    def logits(self, tokens):
        t, T = self.t, len(tokens)
        x = t["token_embd.weight"][tokens]                       # [T, E]
        pos = np.arange(T, dtype=np.float64)
        mask = np.triu(np.full((T, T), -np.inf), 1)
        for l in range(self.L):
            p = "blk.%d." % l
            h = rmsnorm(x, t[p + "attn_norm.weight"], self.eps)
            q = self.mm(h, p + "attn_q.weight")
            k = self.mm(h, p + "attn_k.weight")
            v = self.mm(h, p + "attn_v.weight")
            if p + "attn_q.bias" in t:
                q, k, v = q + t[p + "attn_q.bias"], k + t[p + "attn_k.bias"], v + t[p + "attn_v.bias"]
            q = q.reshape(T, self.H, self.hd)
            k = k.reshape(T, self.KV, self.hd)
            v = v.reshape(T, self.KV, self.hd)
            if p + "attn_q_norm.weight" in t:
                q = rmsnorm(q, t[p + "attn_q_norm.weight"], self.eps)
                k = rmsnorm(k, t[p + "attn_k_norm.weight"], self.eps)
            q = rope(q, pos, self.rot, self.base, self.neox, self.factors, self.scale)
            k = rope(k, pos, self.rot, self.base, self.neox, self.factors, self.scale)
            g = self.H // self.KV
            k = np.repeat(k, g, axis=1)
            v = np.repeat(v, g, axis=1)
            att = np.einsum("thd,shd->hts", q, k) / np.sqrt(self.hd) + mask
            att = np.exp(att - att.max(axis=-1, keepdims=True))
            att /= att.sum(axis=-1, keepdims=True)
            o = np.einsum("hts,shd->thd", att, v).reshape(T, self.H * self.hd)
            x = x + self.mm(o, p + "attn_output.weight")
            h = rmsnorm(x, t[p + "ffn_norm.weight"], self.eps)
            gate = self.mm(h, p + "ffn_gate.weight")
            up = self.mm(h, p + "ffn_up.weight")
            x = x + self.mm(gate / (1.0 + np.exp(-gate)) * up, p + "ffn_down.weight")
        x = rmsnorm(x, t["output_norm.weight"], self.eps)
        return self.mm(x[-1:], self.out_name)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--greedy", type=int, default=0)
    args = ap.parse_args()
    m = Model(args.model)
    toks = [int(x) for x in args.tokens.split(",")]
    lg = m.logits(toks)
    greedy, margins = [], []
    seq = list(toks)
    cur = lg
    for _ in range(args.greedy):
        top2 = np.sort(cur)[-2:]
        nxt = int(np.argmax(cur))
        greedy.append(nxt)
        margins.append(float(top2[1] - top2[0]))  # how clear the choice was
        seq.append(nxt)
        cur = m.logits(seq)
    json.dump({"logits": [float(v) for v in lg], "greedy": greedy, "margins": margins}, sys.stdout)


if __name__ == "__main__":
    main()
