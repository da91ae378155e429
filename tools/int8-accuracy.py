#!/usr/bin/env python3
"""How close quantized linear layers get to f32, simulated in PyTorch before any kernel is written.
Each scheme replaces Linear layers by products on quantized weights and inputs scaled back (the
block sums of the integer kernels are exact, so a product of the dequantized values, done in f64,
is the kernel's result up to f32 rounding). Prints, per scheme, min and mean cosine to the
reference of:
  * every all-MiniLM-L6-v2 golden text and query (fixtures/embeddings/all-MiniLM-L6-v2.golden.json,
    sentence-transformers f32 vectors);
  * every Cranfield document (../shared/datasets/cranfield/corpus.jsonl; reference: the f32 model
    here) - a held-out check;
  * every tiny decoder's golden passages ("pass", what Int8EmbedderTests checks) and its bge-en-icl
    and instruction queries ("query"), from the stored ids (transformers f32, last token).

Layers (BERT / decoders): "qkv" = query, key, value / q,k,v_proj; "attn_out" = attention.output.dense
/ o_proj; "up" = intermediate.dense / gate_proj, up_proj; "down" = output.dense / down_proj.

Schemes (--scheme; several allowed, or "all"); q/k/v stay f32 unless the name says otherwise:
  q8-h32        what --precision int8 does (Sources/CKernels/gemm_i8.c): attn_out, up, down with
                weights and activations in int8 blocks of 32 along k, each block first rotated by
                the 32 x 32 Hadamard matrix (weights and activations alike)
  q8-h64, q8-h128, q8-h128-b64  the rotation over 64 or 128 values (blocks of 32 or 64)
  q8-h32-qkv, q8-h128-qkv       the same with q/k/v in int8 too
  q8            plain int8 blocks of 32 (llama.cpp's Q8_0; what int8 was before the rotation)
  q8-noqkv-f32  q8 with q/k/v in Q8_0 too
  q8-b16        q8 in blocks of 16
  q8-down-a16, q8-up-a16, q8-attn-out-a16  q8 with one layer's activations in int16
  a16w8         activations int16 blocks of 32, weights int8 blocks of 32 (a16w8-b16: blocks of
                16; a16w8-qkv: q/k/v too)
  a16w12        every linear layer incl. qkv, activations int16 (+-32767) and weights int12
                (+-2047), both in blocks of 32 along k:
                  q = rint(v * (qmax / amax)) clamped to [-qmax, qmax], s = amax / qmax
                  (f32; amax = 0 -> q = 0, s = 0); block sums exact in int32
                  (|sum| <= 32 * 32767 * 2047 = 2146369568 < 2^31)
  a16w12-qkv-f32  the same with qkv in f32
  a16w11, a16w10  a16w12 with weights clamped to +-1023 / +-511
  q8-outliers   q8 with, per row, inputs |x| > 6 rms(row) taken out and multiplied in f32
  bf16          weights and activations rounded to bf16 (qkv f32)
  per-row-sym, per-row-sym-down-f32, per-row-asym, per-row-asym-down-f32, q8-b64: earlier studies
                (per-row activation scales, symmetric or u8 with a zero point, per-channel weights)

Usage (from the repository root; offline):
  tools/.venv/bin/python tools/int8-accuracy.py [--scheme NAME ...] [--limit N] [--no-cranfield]
      [--no-decoders]
  default: --scheme q8 q8-h32. --limit: Cranfield documents (default: all 1400).
"""
import argparse, copy, json, os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import numpy as np
import torch


def quant_blocks(v, bits, B):
    """Dequantized (q * s, f64) symmetric quantization of v [..., k] in blocks of B along k
    (B = 0: one block per row)."""
    qmax = float(2 ** (bits - 1) - 1)
    k = v.shape[-1]
    B = k if B == 0 or B >= k else B
    assert k % B == 0, (k, B)
    vb = v.float().reshape(*v.shape[:-1], k // B, B)
    amax = vb.abs().amax(-1, keepdim=True)
    inv = torch.where(amax > 0, torch.tensor(qmax) / amax, torch.zeros_like(amax))
    inv = torch.where(torch.isfinite(inv), inv, torch.zeros_like(inv))
    q = torch.round((vb * inv).clamp(-qmax, qmax))      # torch.round: half to even, as rintf
    return (q.double() * (amax / qmax).double()).reshape(v.shape)


def per_row(lin, asym):
    """Earlier study: per-row activations, per-channel weights (int8)."""
    W = lin.weight.data.clone()
    sw = W.abs().amax(dim=1, keepdim=True) / 127
    Wq = torch.round(W / sw).clamp(-127, 127)
    b = 0 if lin.bias is None else lin.bias.data.clone()

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


def blocks(lin, wbits, abits, B=32, tau=None):
    """Weights in wbits, inputs in abits, blocks of B along k; tau: per-row outliers in f32."""
    W = lin.weight.data.float()
    WqT = quant_blocks(W, wbits, B).t().contiguous()
    WT = W.double().t().contiguous()
    b = None if lin.bias is None else lin.bias.data.double()

    def fwd(x):
        if tau:
            M = x.abs() > tau * x.pow(2).mean(-1, keepdim=True).sqrt()
            y = quant_blocks(x.masked_fill(M, 0), abits, B) @ WqT + x.double().masked_fill(~M, 0) @ WT
        else:
            y = quant_blocks(x, abits, B) @ WqT
        return (y if b is None else y + b).to(x.dtype)
    lin.forward = fwd


def hadamard(v, H):
    """v [..., k] times the block-diagonal Sylvester Hadamard matrix with blocks of H (entries
    +-1, unnormalized) along k."""
    k = v.shape[-1]
    out = v.reshape(*v.shape[:-1], k // H, H).clone()
    h = 1
    while h < H:
        o = out.reshape(*out.shape[:-1], H // (2 * h), 2, h)
        a, b = o[..., 0, :].clone(), o[..., 1, :].clone()
        o[..., 0, :], o[..., 1, :] = a + b, a - b
        out = o.reshape(*out.shape[:-1], H)
        h *= 2
    return out.reshape(v.shape)


def rotated(lin, H, wbits=8, abits=8, B=32):
    """Q8 on x·H and W·H (block Hadamard rotation along k): (xH)(WH)^T = H·(x W^T)."""
    W = lin.weight.data.double()
    k = W.shape[1]
    H = H if k % H == 0 else 32
    WqT = quant_blocks(hadamard(W, H), wbits, B).t().contiguous() / H
    b = None if lin.bias is None else lin.bias.data.double()

    def fwd(x):
        y = quant_blocks(hadamard(x.double(), H), abits, B) @ WqT
        return (y if b is None else y + b).to(x.dtype)
    lin.forward = fwd


def bf16(lin):
    WT = lin.weight.data.to(torch.bfloat16).double().t().contiguous()
    b = None if lin.bias is None else lin.bias.data.double()

    def fwd(x):
        y = x.to(torch.bfloat16).double() @ WT
        return (y if b is None else y + b).to(x.dtype)
    lin.forward = fwd


Q8 = lambda l: blocks(l, 8, 8)
A16W = lambda wb: (lambda l: blocks(l, wb, 16))
PR = lambda asym: (lambda l: per_row(l, asym))
# name -> {layer: quantizer}; a layer not named stays f32
SCHEMES = {
    "q8": dict(attn_out=Q8, up=Q8, down=Q8),
    "q8-noqkv-f32": dict(qkv=Q8, attn_out=Q8, up=Q8, down=Q8),
    "a16w8": dict(attn_out=A16W(8), up=A16W(8), down=A16W(8)),
    "q8-down-a16": dict(attn_out=Q8, up=Q8, down=A16W(8)),
    "q8-up-a16": dict(attn_out=Q8, up=A16W(8), down=Q8),
    "q8-attn-out-a16": dict(attn_out=A16W(8), up=Q8, down=Q8),
    "a16w8-qkv": dict(qkv=A16W(8), attn_out=A16W(8), up=A16W(8), down=A16W(8)),
    "a16w8-b16": {r: (lambda l: blocks(l, 8, 16, B=16)) for r in ("attn_out", "up", "down")},
    "q8-b16": {r: (lambda l: blocks(l, 8, 8, B=16)) for r in ("attn_out", "up", "down")},
    "q8-h32": {r: (lambda l: rotated(l, 32)) for r in ("attn_out", "up", "down")},
    "q8-h64": {r: (lambda l: rotated(l, 64)) for r in ("attn_out", "up", "down")},
    "q8-h128": {r: (lambda l: rotated(l, 128)) for r in ("attn_out", "up", "down")},
    "q8-h128-b64": {r: (lambda l: rotated(l, 128, B=64)) for r in ("attn_out", "up", "down")},
    "q8-h32-qkv": {r: (lambda l: rotated(l, 32)) for r in ("qkv", "attn_out", "up", "down")},
    "q8-h128-qkv": {r: (lambda l: rotated(l, 128)) for r in ("qkv", "attn_out", "up", "down")},
    "a16w12": dict(qkv=A16W(12), attn_out=A16W(12), up=A16W(12), down=A16W(12)),
    "a16w12-qkv-f32": dict(attn_out=A16W(12), up=A16W(12), down=A16W(12)),
    "a16w11": dict(qkv=A16W(11), attn_out=A16W(11), up=A16W(11), down=A16W(11)),
    "a16w10": dict(qkv=A16W(10), attn_out=A16W(10), up=A16W(10), down=A16W(10)),
    "q8-outliers": {r: (lambda l: blocks(l, 8, 8, tau=6)) for r in ("attn_out", "up", "down")},
    "bf16": dict(attn_out=bf16, up=bf16, down=bf16),
    "per-row-sym": dict(qkv=PR(False), attn_out=PR(False), up=PR(False), down=PR(False)),
    "per-row-sym-down-f32": dict(qkv=PR(False), attn_out=PR(False), up=PR(False)),
    "per-row-asym": dict(qkv=PR(True), attn_out=PR(True), up=PR(True), down=PR(True)),
    "per-row-asym-down-f32": dict(qkv=PR(True), attn_out=PR(True), up=PR(True)),
    "q8-b64": {r: (lambda l: blocks(l, 8, 8, B=64)) for r in ("qkv", "attn_out", "up", "down")},
}
BERT_LAYER = lambda n: ("qkv" if ".attention.self." in n else "attn_out" if "attention.output.dense" in n
                        else "up" if "intermediate.dense" in n else "down" if n.endswith("output.dense") else None)
DECODER_LAYER = lambda n: ("qkv" if n.endswith(("q_proj", "k_proj", "v_proj")) else "attn_out" if n.endswith("o_proj")
                           else "up" if n.endswith(("gate_proj", "up_proj")) else "down" if n.endswith("down_proj") else None)
DECODERS = ["tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-qwen3"]


def quantized(model, scheme, layer_of):
    m = copy.deepcopy(model)
    for name, mod in m.named_modules():
        if isinstance(mod, torch.nn.Linear) and SCHEMES[scheme].get(layer_of(name)):
            SCHEMES[scheme][layer_of(name)](mod)
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scheme", nargs="+", default=["q8", "q8-h32"], help="scheme names, or all")
    ap.add_argument("--limit", type=int, default=0, help="Cranfield documents (default: all)")
    ap.add_argument("--corpus", default="../shared/datasets/cranfield/corpus.jsonl")
    ap.add_argument("--no-cranfield", action="store_true")
    ap.add_argument("--no-decoders", action="store_true")
    args = ap.parse_args()
    names = list(SCHEMES) if args.scheme == ["all"] else args.scheme
    for s in names:
        if s not in SCHEMES:
            ap.error(f"unknown scheme {s}; known: {', '.join(SCHEMES)}")
    torch.set_num_threads(2)
    from sentence_transformers import SentenceTransformer
    base = SentenceTransformer("models/all-MiniLM-L6-v2", device="cpu")
    g = json.load(open("fixtures/embeddings/all-MiniLM-L6-v2.golden.json"))
    texts = [c["text"] for c in g["cases"]] + [q["input"] for q in g["queries"]]
    gold = np.array([c["embedding"] for c in g["cases"]] + [q["embedding"] for q in g["queries"]])
    gold /= np.linalg.norm(gold, axis=1, keepdims=True)
    docs = []
    if not args.no_cranfield:
        for line in open(args.corpus):
            d = json.loads(line)
            t = (d["title"] + ". " + d["text"]) if d["title"] else d["text"]
            if t.strip():
                docs.append(t)
            if args.limit and len(docs) >= args.limit:
                break
        ref = base.encode(docs, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
    decoders = []
    if not args.no_decoders:
        from transformers import AutoModel
        for name in DECODERS:
            dg = json.load(open(f"fixtures/decoders/{name}.golden.json"))
            model = AutoModel.from_pretrained(f"fixtures/decoders/{name}", dtype=torch.float32,
                                              attn_implementation="eager").eval()
            cases = [(sect == "passages", c["ids"], np.array(c["embedding"]))
                     for sect in ("passages", "icl_queries", "instruct_queries") for c in dg[sect]]
            decoders.append((name, model, cases))

    def cos(a, b):
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    for s in names:
        m = quantized(base, s, BERT_LAYER)
        v = m.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True).astype(np.float64)
        c = (v * gold).sum(1)
        out = f"{s:22s} MiniLM golden min {c.min():.6f} mean {c.mean():.6f} (worst {texts[int(c.argmin())][:16]!r})"
        if docs:
            q = m.encode(docs, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
            c = (q * ref).sum(1)
            out += f"; Cranfield min {c.min():.6f} mean {c.mean():.6f} ({len(docs)} docs)"
        print(out, flush=True)
        for name, model, cases in decoders:
            qm = quantized(model, s, DECODER_LAYER)
            ps, qs = [], []
            with torch.no_grad():
                for is_passage, ids, e in cases:
                    h = qm(input_ids=torch.tensor([ids]), use_cache=False).last_hidden_state[0, -1]
                    (ps if is_passage else qs).append(cos(h.double().numpy(), e))
            print(f"{'':22s} {name:13s} pass min {min(ps):.6f} mean {np.mean(ps):.6f}; "
                  f"query min {min(qs):.6f} mean {np.mean(qs):.6f}", flush=True)


if __name__ == "__main__":
    main()
