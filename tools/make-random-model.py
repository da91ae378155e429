#!/usr/bin/env python3
"""Writes a random-weight model folder with the REAL shape of a decoder embedder, for measuring
memory and speed without downloading the model.

  make-random-model.py --shape qwen3-0.6b|qwen2-1.5b|mistral-7b [--dtype bf16|f32] --out DIR
                       [--bare] [--max-shard-gb 2] [--seed 0] [--no-verify] [--dry-run]

  qwen3-0.6b  Qwen3-Embedding-0.6B: Qwen3ForCausalLM, hidden 1024, 28 layers, 16 heads, 8 KV
              heads, head_dim 128, intermediate 3072, vocab 151669, tied embeddings
  qwen2-1.5b  gte-Qwen2-1.5B-instruct: Qwen2ForCausalLM, hidden 1536, 28 layers, 12 heads,
              2 KV heads, intermediate 8960, vocab 151646, q/k/v biases, tied embeddings
  mistral-7b  bge-en-icl / e5-mistral: MistralForCausalLM, hidden 4096, 32 layers, 32 heads,
              8 KV heads, intermediate 14336, vocab 32000, untied LM head

The weights are written tensor by tensor into safetensors shards (never the whole model in
memory; the 7B shape needs about one shard of RAM), drawn from a seeded generator, so the same
arguments give the same files. Tensor names and shapes are taken from the transformers model
built on the meta device, so they are exactly what transformers loads. --bare writes the base
model only (architectures [...Model], keys without "model.", no LM head), as some embedding
checkpoints are stored. The tokenizer is a small trained one from
fixtures/decoders/tokenizers/ (tools/make-decoder-fixtures.sh): its ids are all < vocab_size,
which is all that running the model needs. After writing, models under 3B parameters are
loaded once with transformers to check that every tensor is found (--no-verify skips that).
"""
import argparse
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
TOKENIZERS = ROOT / "fixtures" / "decoders" / "tokenizers"

SHAPES = {
    "qwen3-0.6b": dict(
        arch="Qwen3ForCausalLM", tokenizer="bytelevel-qwen3emb",
        config=dict(hidden_size=1024, num_hidden_layers=28, num_attention_heads=16,
                    num_key_value_heads=8, head_dim=128, intermediate_size=3072, vocab_size=151669,
                    rope_theta=1000000.0, tie_word_embeddings=True, max_position_embeddings=32768,
                    rms_norm_eps=1e-6, attention_bias=False, use_sliding_window=False)),
    "qwen2-1.5b": dict(
        arch="Qwen2ForCausalLM", tokenizer="bytelevel-qwen",
        config=dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12,
                    num_key_value_heads=2, intermediate_size=8960, vocab_size=151646,
                    rope_theta=1000000.0, tie_word_embeddings=True, max_position_embeddings=32768,
                    rms_norm_eps=1e-6, use_sliding_window=False)),
    "mistral-7b": dict(
        arch="MistralForCausalLM", tokenizer="sp-metaspace",
        config=dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                    num_key_value_heads=8, intermediate_size=14336, vocab_size=32000,
                    rope_theta=10000.0, tie_word_embeddings=False, max_position_embeddings=32768,
                    rms_norm_eps=1e-5, sliding_window=4096)),
}
DTYPES = {"bf16": ("bfloat16", 2), "f32": ("float32", 4)}


def tensor_plan(arch, cfg, bare):
    """[(name, shape)] in transformers' state_dict order, from a model on the meta device."""
    import torch
    import transformers

    cls = getattr(transformers, arch if not bare else arch.replace("ForCausalLM", "Model"))
    with torch.device("meta"):
        model = cls(cfg)
    plan = []
    for name, t in model.state_dict().items():
        if name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue   # tied: not stored
        plan.append((name, tuple(t.shape)))
    return plan


def random_tensor(name, shape, index, seed, dtype):
    import torch

    g = torch.Generator().manual_seed(seed * 1_000_003 + index)
    if name.endswith("norm.weight"):
        t = 1.0 + 0.1 * (2 * torch.rand(shape, generator=g) - 1)
    elif name.endswith(".bias"):
        t = 0.02 * torch.randn(shape, generator=g)
    else:
        t = 0.02 * torch.randn(shape, generator=g)
    return t.to(getattr(torch, dtype)).contiguous()


def v4_style_config(d):
    """Hub checkpoints carry "rope_theta"/"torch_dtype" (transformers 4); transformers 5 writes
    "rope_parameters"/"dtype" and reads both."""
    d = dict(d)
    rp = d.pop("rope_parameters", None)
    if rp is not None:
        d["rope_theta"] = rp["rope_theta"]
        d["rope_scaling"] = None
    if "dtype" in d:
        d["torch_dtype"] = d.pop("dtype")
    return dict(sorted(d.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--bare", action="store_true", help="base model only, keys without 'model.'")
    ap.add_argument("--max-shard-gb", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-verify", action="store_true")
    ap.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    args = ap.parse_args()

    import torch
    import transformers
    from safetensors.torch import save_file

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    torch.set_num_threads(1)   # leave the other core alone (builds); generation is I/O-bound anyway
    spec = SHAPES[args.shape]
    dtype, width = DTYPES[args.dtype]
    tok_dir = TOKENIZERS / spec["tokenizer"]
    if not (tok_dir / "tokenizer.json").exists():
        sys.exit(f"{tok_dir} is missing: run tools/make-decoder-fixtures.sh first")
    tok_json = json.loads((tok_dir / "tokenizer.json").read_text(encoding="utf-8"))
    tok_cfg = json.loads((tok_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    added = {t["content"]: t["id"] for t in tok_json["added_tokens"]}
    tok_size = max(list(tok_json["model"]["vocab"].values()) + list(added.values())) + 1
    assert tok_size <= spec["config"]["vocab_size"]

    arch = spec["arch"] if not args.bare else spec["arch"].replace("ForCausalLM", "Model")
    cfg_cls = getattr(transformers, spec["arch"].replace("ForCausalLM", "Config"))
    cfg = cfg_cls(bos_token_id=added.get(tok_cfg.get("bos_token") or ""),
                  eos_token_id=added[tok_cfg["eos_token"]],
                  pad_token_id=added.get(tok_cfg.get("pad_token") or ""),
                  initializer_range=0.02, **spec["config"])
    cfg.architectures = [arch]
    cfg.dtype = dtype
    plan = tensor_plan(spec["arch"], cfg, args.bare)
    n_params = sum(int(torch.Size(s).numel()) for _, s in plan)

    # Shards: consecutive tensors up to --max-shard-gb each.
    limit = int(args.max_shard_gb * (1 << 30))
    shards, cur, cur_size = [], [], 0
    for name, shape in plan:
        size = int(torch.Size(shape).numel()) * width
        if cur and cur_size + size > limit:
            shards.append(cur)
            cur, cur_size = [], 0
        cur.append((name, shape))
        cur_size += size
    shards.append(cur)
    names = (["model.safetensors"] if len(shards) == 1 else
             [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])

    out = args.out
    if args.dry_run:
        print(f"{args.shape} ({arch}, {dtype}): {n_params / 1e9:.3f} B parameters, {len(plan)} tensors, "
              f"{sum(int(torch.Size(s).numel()) for _, s in plan) * width / (1 << 30):.2f} GiB in "
              f"{len(shards)} shard(s); first tensors: {plan[:3]}")
        return
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    print(f"{args.shape} ({arch}, {dtype}): {n_params / 1e9:.3f} B parameters, {len(plan)} tensors, "
          f"{len(shards)} shard(s) -> {out}", flush=True)
    weight_map, index, total = {}, 0, 0
    for shard, fname in zip(shards, names):
        tensors = {}
        for name, shape in shard:
            tensors[name] = random_tensor(name, shape, index, args.seed, dtype)
            index += 1
            weight_map[name] = fname
            total += tensors[name].numel() * width
        save_file(tensors, str(out / fname), metadata={"format": "pt"})
        os.chmod(out / fname, 0o644)
        del tensors
        print(f"  wrote {fname}", flush=True)
    if len(shards) > 1:
        (out / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n")

    cfg_d = v4_style_config(json.loads(cfg.to_json_string()))
    (out / "config.json").write_text(json.dumps(cfg_d, indent=2) + "\n")
    shutil.copy(tok_dir / "tokenizer.json", out / "tokenizer.json")
    shutil.copy(tok_dir / "tokenizer_config.json", out / "tokenizer_config.json")
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"done: {size / (1 << 30):.2f} GiB on disk ({size} bytes)")

    if not args.no_verify and n_params < 3e9:
        from transformers import AutoModel, PreTrainedTokenizerFast

        model, info = AutoModel.from_pretrained(out, dtype=torch.float32, output_loading_info=True)
        assert not info["missing_keys"] and not info["mismatched_keys"] and not info["unexpected_keys"], info
        tok = PreTrainedTokenizerFast.from_pretrained(out)
        ids = tok("Instruct: verify\nQuery:does it load?", return_tensors="pt")["input_ids"]
        with torch.no_grad():
            h = model(input_ids=ids).last_hidden_state
        assert torch.isfinite(h).all()
        print(f"verified: transformers loads all {len(plan)} tensors; {ids.shape[1]} tokens -> "
              f"hidden {tuple(h.shape)}, finite")


if __name__ == "__main__":
    main()
