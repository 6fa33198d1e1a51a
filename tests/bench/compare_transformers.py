"""Decode throughput of alignpro against Hugging Face transformers' generate, on the same machine
in the same run, with the same random Llama-style checkpoint.

    python tests/bench/compare_transformers.py --bench build/tests/bench/alignpro_bench

Builds a random LlamaForCausalLM (about 56M parameters by default) in a temporary folder, times
transformers' generate (greedy, fixed length, default attention, KV cache) at the given batch,
then runs alignpro_bench on the same folder with the same shape, and prints both and the ratio.
Needs torch and transformers (analysis-only dependencies; the C++ build does not need them).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def build_model(folder, args):
    config = LlamaConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(folder)
    return model


def time_transformers(model, args):
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, args.vocab, (args.batch, args.prompt_tokens), generator=generator)
    mask = torch.ones_like(ids)
    kwargs = dict(
        attention_mask=mask,
        do_sample=args.sample,
        max_new_tokens=args.new_tokens,
        min_new_tokens=args.new_tokens,
        pad_token_id=0,
    )
    if args.sample:
        kwargs.update(temperature=1.0, top_k=0, top_p=1.0)
    best = float("inf")
    with torch.inference_mode():
        model.generate(ids, **dict(kwargs, max_new_tokens=4, min_new_tokens=4))  # warm-up
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = model.generate(ids, **kwargs)
            best = min(best, time.perf_counter() - start)
    assert out.shape[1] == args.prompt_tokens + args.new_tokens
    return args.batch * args.new_tokens / best, best


def run_alignpro(folder, args):
    command = [
        args.bench,
        "--model",
        folder,
        "--batch",
        str(args.batch),
        "--prompt-tokens",
        str(args.prompt_tokens),
        "--new-tokens",
        str(args.new_tokens),
        "--repeats",
        str(args.repeats),
        "--machine-readable",
    ]
    if args.sample:
        command.append("--sample")
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return {k: float(v) for k, v in (line.split("=", 1) for line in out.split())}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench", required=True, help="path of the alignpro_bench program")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sample", action="store_true", help="sample instead of greedy")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--intermediate", type=int, default=1408)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=32000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="alignpro_bench_") as folder:
        model = build_model(folder, args)
        params = sum(p.numel() for p in model.parameters())
        print(f"model: random LlamaForCausalLM, {params / 1e6:.1f}M parameters, float32, CPU, "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        print(f"shape: batch {args.batch}, prompt {args.prompt_tokens} tokens, "
              f"{args.new_tokens} new tokens, {'sampling' if args.sample else 'greedy'}")
        hf_rate, hf_seconds = time_transformers(model, args)
        del model
        ours = run_alignpro(folder, args)
    ratio = ours["generate_tokens_per_second"] / hf_rate
    print(f"transformers generate: {hf_seconds:.2f} s, {hf_rate:.0f} new tokens/s")
    print(f"alignpro generate:     {ours['generate_seconds']:.2f} s, "
          f"{ours['generate_tokens_per_second']:.0f} new tokens/s "
          f"(decode {ours['decode_tokens_per_second']:.0f} tokens/s, "
          f"{ours['decode_gflops']:.1f} GFLOP/s; prefill {ours['prefill_tokens_per_second']:.0f} "
          f"tokens/s, {ours['prefill_gflops']:.1f} GFLOP/s; matrix-product peak "
          f"{ours['peak_gflops']:.1f} GFLOP/s)")
    print(f"ratio alignpro / transformers: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
