#!/usr/bin/env python3
"""Writes a random-weight cross-encoder with the REAL shape of cross-encoder/ms-marco-MiniLM-L-6-v2,
for measuring reranking speed and memory without downloading the model.

  make-random-cross-encoder.py --out DIR [--tokenizer models/all-MiniLM-L6-v2] [--seed 0]
                               [--std 0.05] [--max-length 512]

Shape: BertForSequenceClassification, 6 layers, hidden 384, 12 heads, intermediate 1536, vocab 30522,
512 positions, 2 token types, num_labels 1 (22.7 M parameters, ~91 MB in float32). The tokenizer
files (WordPiece, bert-base-uncased's 30522-token vocabulary, the same one ms-marco-MiniLM-L-6-v2
uses) are copied from the all-MiniLM-L6-v2 folder, with tokenizer.json's built-in truncation
(128) and fixed padding removed, as in the ms-marco model's file. Weights are drawn from a seeded
generator in parameter-name order (norm weights around 1, biases around 0, the rest N(0, std)),
so the same arguments give the same files. The folder is written by sentence-transformers'
CrossEncoder.save() and loaded back once with CrossEncoder to check it predicts.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
SHAPE = dict(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
             intermediate_size=1536, hidden_act="gelu", hidden_dropout_prob=0.1,
             attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
             initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=0,
             position_embedding_type="absolute", num_labels=1)


def randomize(model, seed, std):
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if name.endswith("LayerNorm.weight"):
                p.copy_(1.0 + 0.1 * (2 * torch.rand(p.shape, generator=g) - 1))
            elif name.endswith(".bias"):
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(std * torch.randn(p.shape, generator=g))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--tokenizer", type=Path, default=ROOT / "models" / "all-MiniLM-L6-v2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--std", type=float, default=0.05)
    ap.add_argument("--max-length", type=int, default=512)
    args = ap.parse_args()

    import torch
    import transformers
    from sentence_transformers import CrossEncoder

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    torch.set_num_threads(1)
    tok_dir = args.tokenizer
    if not (tok_dir / "tokenizer.json").exists():
        sys.exit(f"{tok_dir}/tokenizer.json is missing (the all-MiniLM-L6-v2 folder: tools/setup.sh)")
    tok_json = json.loads((tok_dir / "tokenizer.json").read_text(encoding="utf-8"))
    assert tok_json["model"]["type"] == "WordPiece" and len(tok_json["model"]["vocab"]) == SHAPE["vocab_size"]
    tok_json["truncation"] = None
    tok_json["padding"] = None
    tok_cfg = json.loads((tok_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    tok_cfg.pop("name_or_path", None)
    tok_cfg["model_max_length"] = args.max_length

    cfg = transformers.BertConfig(**SHAPE)
    cfg.architectures = ["BertForSequenceClassification"]
    model = transformers.BertForSequenceClassification(cfg)
    randomize(model, args.seed, args.std)
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory() as work:
        hf = Path(work, "hf")
        model.save_pretrained(hf)
        (hf / "tokenizer.json").write_text(json.dumps(tok_json, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        (hf / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2) + "\n")
        for fn in ("vocab.txt", "special_tokens_map.json"):
            if (tok_dir / fn).exists():
                shutil.copy(tok_dir / fn, hf / fn)
        ce = CrossEncoder(str(hf), max_length=args.max_length, device="cpu")
        if args.out.exists():
            shutil.rmtree(args.out)
        ce.save(str(args.out), create_model_card=False)
    for fn in ("vocab.txt", "special_tokens_map.json"):   # kept beside tokenizer.json, as on the Hub
        if (tok_dir / fn).exists() and not (args.out / fn).exists():
            shutil.copy(tok_dir / fn, args.out / fn)
    for p in args.out.rglob("*.safetensors"):
        os.chmod(p, 0o644)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"BertForSequenceClassification (ms-marco-MiniLM-L-6-v2 shape): {n_params / 1e6:.1f} M parameters, "
          f"{size / 1e6:.1f} MB -> {args.out}")

    ref = CrossEncoder(str(args.out), device="cpu")
    pairs = [("how do airplanes fly?", "Wings produce lift because the pressure below the wing is higher."),
             ("how do airplanes fly?", "The library stores music history papers."),
             ("what is a vector database?", "A vector database finds the nearest embeddings to a query.")]
    scores = ref.predict(pairs, batch_size=8)
    assert len(scores) == len(pairs) and all(0.0 < s < 1.0 for s in scores), scores
    print(f"verified: CrossEncoder loads it (max_length {ref.max_seq_length}, activation "
          f"{type(ref.activation_fn).__name__}); scores {[round(float(s), 4) for s in scores]}")


if __name__ == "__main__":
    main()
