#!/usr/bin/env python3
"""How close int8 linear layers get to f32 for all-MiniLM-L6-v2, simulated in PyTorch before any
kernel is written. Each scheme quantizes every Linear layer's weights and inputs, computes the
products on the quantized values and scales them back; prints, per scheme, the cosine of each
Cranfield document's vector to the f32 one (min and mean).

Schemes: per-row activations (symmetric, or asymmetric u8 with a zero point) with per-channel
weights, optionally keeping the FFN down projection in f32; and blocks of B values along k for
both (llama.cpp's Q8_0 layout: one scale per block, integer dot per block).

Usage (from the repository root): tools/.venv/bin/python tools/int8-accuracy.py [--limit N]
"""
import argparse, copy, json
import numpy as np
import torch
from sentence_transformers import SentenceTransformer

ap = argparse.ArgumentParser()
ap.add_argument("--limit", type=int, default=0, help="documents (default: all)")
ap.add_argument("--corpus", default="../shared/datasets/cranfield/corpus.jsonl")
args = ap.parse_args()
torch.set_num_threads(2)
base = SentenceTransformer("models/all-MiniLM-L6-v2", device="cpu")
docs = []
for line in open(args.corpus):
    d = json.loads(line)
    t = (d["title"] + ". " + d["text"]) if d["title"] else d["text"]
    if t.strip():
        docs.append(t)
    if args.limit and len(docs) >= args.limit:
        break
ref = base.encode(docs, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)


def per_row(lin, asym):
    W = lin.weight.data.clone()
    sw = W.abs().amax(dim=1, keepdim=True) / 127
    Wq = torch.round(W / sw).clamp(-127, 127)
    b = lin.bias.data.clone()

    def fwd(x):
        if asym:
            lo, hi = x.amin(dim=-1, keepdim=True), x.amax(dim=-1, keepdim=True)
            sx = ((hi - lo) / 255).clamp_min(1e-12)
            zp = torch.round(-lo / sx)
            xq = torch.round(x / sx + zp).clamp(0, 255) - zp
        else:
            sx = x.abs().amax(dim=-1, keepdim=True).clamp_min(1e-12) / 127
            xq = torch.round(x / sx).clamp(-127, 127)
        return (xq @ Wq.t()) * sx * sw.t() + b
    lin.forward = fwd


def blocks(lin, B):
    W = lin.weight.data.clone()
    n, k = W.shape
    Wb = W.view(n, k // B, B)
    sw = Wb.abs().amax(dim=2, keepdim=True).clamp_min(1e-12) / 127
    Wq = torch.round(Wb / sw).clamp(-127, 127)
    b = lin.bias.data.clone()

    def fwd(x):
        shp = x.shape
        xb = x.reshape(-1, k // B, B)
        sx = xb.abs().amax(dim=2, keepdim=True).clamp_min(1e-12) / 127
        xq = torch.round(xb / sx).clamp(-127, 127)
        y = torch.einsum("mqb,nqb->mnq", xq, Wq)   # integer dot per block
        y = (y * sx.squeeze(2).unsqueeze(1) * sw.squeeze(2).unsqueeze(0)).sum(2)
        return y.reshape(*shp[:-1], n) + b
    lin.forward = fwd


schemes = [
    ("per-row symmetric, per-channel", lambda l: per_row(l, False), False),
    ("per-row symmetric, FFN down in f32", lambda l: per_row(l, False), True),
    ("per-row asymmetric, per-channel", lambda l: per_row(l, True), False),
    ("per-row asymmetric, FFN down in f32", lambda l: per_row(l, True), True),
    ("blocks of 64", lambda l: blocks(l, 64), False),
    ("blocks of 32 (Q8_0)", lambda l: blocks(l, 32), False),
]
for name, quantize, keep_down in schemes:
    m = copy.deepcopy(base)
    for mod_name, mod in m.named_modules():
        if isinstance(mod, torch.nn.Linear):
            if keep_down and mod_name.endswith("output.dense") and "attention" not in mod_name:
                continue
            quantize(mod)
    q = m.encode(docs, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
    cos = (ref * q).sum(1)
    print(f"{name:40s} cos min {cos.min():.6f} mean {cos.mean():.6f} ({len(docs)} documents)", flush=True)
