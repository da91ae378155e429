#!/usr/bin/env python3
"""How close int8 linear layers get to f32 for all-MiniLM-L6-v2, simulated in PyTorch before any
kernel is written: weights and activations quantized symmetrically in blocks of B values along k
(llama.cpp's Q8_0 layout: one scale per block), integer dot products per block, scaled and summed.
Prints the cosine of each Cranfield document's vector to the f32 one (min and mean).

Usage (from the repository root): tools/.venv/bin/python tools/int8-accuracy.py
"""
import json, torch, numpy as np, copy
from sentence_transformers import SentenceTransformer
torch.set_num_threads(2)
base = SentenceTransformer("models/all-MiniLM-L6-v2", device="cpu")
docs = []
for i, line in enumerate(open("../shared/datasets/cranfield/corpus.jsonl")):
    d = json.loads(line); t = (d["title"] + ". " + d["text"]) if d["title"] else d["text"]
    if t.strip(): docs.append(t)
ref = base.encode(docs, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
def quant(lin, B):
    W = lin.weight.data.clone(); n, k = W.shape
    Wb = W.view(n, k // B, B)
    sw = Wb.abs().amax(dim=2, keepdim=True).clamp_min(1e-12) / 127
    Wq = torch.round(Wb / sw).clamp(-127, 127)
    b = lin.bias.data.clone()
    def fwd(x):
        shp = x.shape; xb = x.reshape(-1, k // B, B)
        sx = xb.abs().amax(dim=2, keepdim=True).clamp_min(1e-12) / 127
        xq = torch.round(xb / sx).clamp(-127, 127)
        # per block: (xq · Wq) * sx * sw
        y = torch.einsum("mqb,nqb->mnq", xq, Wq)   # integer dots per block
        y = (y * sx.squeeze(2).unsqueeze(1) * sw.squeeze(2).unsqueeze(0)).sum(2)
        return y.reshape(*shp[:-1], n) + b
    lin.forward = fwd
for B in [32, 64]:
    m = copy.deepcopy(base)
    for name, mod in m.named_modules():
        if isinstance(mod, torch.nn.Linear): quant(mod, B)
    q = m.encode(docs, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
    cos = (ref * q).sum(1)
    print("blocks of %d: cos min %.6f mean %.6f (n=%d)" % (B, cos.min(), cos.mean(), len(docs)))
