"""Benchmark: the staged preload against safetensors, transformers and the raw physical limit.

Generates a checkpoint with Qwen3-4B-Instruct-2507's exact tensor names, shapes and 3-shard split
(8,044,936,192 B of bf16, random bytes; ``--scale 0.1`` for a smaller one with fewer layers and a
smaller vocabulary), then times every variant in a fresh subprocess (honest peak RSS), warm (page cache
filled) and cold (``posix_fadvise(DONTNEED)`` on each file first), ``--runs`` times interleaved, and
prints medians, the spread (max - min) / median, and ratios to the fastest raw way in the same run.

Clock: starts after ``import torch`` (every variant needs it), ends when every byte is resident
(mappings touched, tensors loaded). Peak RSS is ``ru_maxrss``; ``+RSS`` subtracts the RSS after imports.

    .venv/bin/python bench/preload.py --scale 0.1 --runs 5
    .venv/bin/python bench/preload.py --runs 5          # the full 8.0 GB checkpoint
    .venv/bin/python bench/preload.py --smoke           # seconds: proves each kind of variant runs

``--smoke``: one cold run of each kind of variant (``--modes``, ``--variants`` to change) on the embedded tiny model (a real Qwen3
checkpoint of ~0.8 MB in 3 shards, built once and cached under ``$LLMFN_CACHE`` as ``llmfn dev`` does)
instead of a generated one, every variant in turn in one fresh child process (torch imported once); the
figures mean nothing. ``tests/bench`` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

# This script is named like the package it measures: import the package, not the script itself.
_BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH_DIR]
sys.path.insert(0, str(_BENCH_DIR.parent))

HIDDEN, INTERMEDIATE, HEADS, KV_HEADS, HEAD_DIM = 2560, 9728, 32, 8, 128
LAYERS, VOCAB, SHARD_LIMIT = 36, 151936, 4_000_000_000
PAGE = 4096
SMOKE_VARIANTS = "llmfn:2,llmfn-read:2,load_file,safe_open,from_pretrained,raw-preadv:2,raw-mmap,raw-mmap:1"


def qwen3_4b_layout(scale: float) -> list[tuple[str, tuple[int, ...]]]:
    """Tensor names and shapes in module order (the order ``save_pretrained`` shards in)."""
    layers, vocab = max(1, round(LAYERS * scale)), max(256, round(VOCAB * scale))
    tensors: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight", (vocab, HIDDEN))]
    for i in range(layers):
        p = f"model.layers.{i}."
        tensors += [
            (p + "self_attn.q_proj.weight", (HEADS * HEAD_DIM, HIDDEN)),
            (p + "self_attn.k_proj.weight", (KV_HEADS * HEAD_DIM, HIDDEN)),
            (p + "self_attn.v_proj.weight", (KV_HEADS * HEAD_DIM, HIDDEN)),
            (p + "self_attn.o_proj.weight", (HIDDEN, HEADS * HEAD_DIM)),
            (p + "self_attn.q_norm.weight", (HEAD_DIM,)),
            (p + "self_attn.k_norm.weight", (HEAD_DIM,)),
            (p + "mlp.gate_proj.weight", (INTERMEDIATE, HIDDEN)),
            (p + "mlp.up_proj.weight", (INTERMEDIATE, HIDDEN)),
            (p + "mlp.down_proj.weight", (HIDDEN, INTERMEDIATE)),
            (p + "input_layernorm.weight", (HIDDEN,)),
            (p + "post_attention_layernorm.weight", (HIDDEN,)),
        ]
    return [*tensors, ("model.norm.weight", (HIDDEN,))]


def generate(out: Path, scale: float) -> list[Path]:
    """Write the checkpoint (bf16 random bytes, shards filled greedily up to 4 GB x scale) unless present."""
    layout = qwen3_4b_layout(scale)
    shards: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    used = 0
    for name, shape in layout:
        nbytes = 2 * _numel(shape)
        if shards[-1] and used + nbytes > SHARD_LIMIT * scale:
            shards.append([])
            used = 0
        shards[-1].append((name, shape))
        used += nbytes
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    paths = [out / n for n in names]
    if (out / "model.safetensors.index.json").exists() and all(p.exists() for p in paths):
        return paths
    out.mkdir(parents=True, exist_ok=True)
    block = os.urandom(64 << 20)
    weight_map: dict[str, str] = {}
    for path, shard in zip(paths, shards, strict=True):
        header: dict[str, object] = {"__metadata__": {"format": "pt"}}
        offset = 0
        for name, shape in sorted(shard):  # safetensors writes tensors sorted by name within a dtype
            nbytes = 2 * _numel(shape)
            header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
            weight_map[name] = path.name
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        with open(path, "wb") as fh:
            fh.write(len(raw).to_bytes(8, "little") + raw)
            written = 0
            while written < offset:
                n = min(len(block), offset - written)
                fh.write(block[:n])
                written += n
            fh.flush()
            os.fsync(fh.fileno())
    total = sum(2 * _numel(s) for _, s in layout)
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=1))
    config = {
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": sum(1 for n, _ in layout if n.endswith("input_layernorm.weight")),
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "vocab_size": layout[0][1][0],
        "max_position_embeddings": 262144,
        "rms_norm_eps": 1e-6,
        "rope_theta": 5000000,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
    }
    (out / "config.json").write_text(json.dumps(config, indent=1))
    return paths


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# ---------------------------------------------------------------- child side: one variant, one run


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _touch(tensor) -> None:
    """Read one byte per page so that every page is resident."""
    import torch

    flat = tensor.reshape(-1).view(torch.uint8)
    if flat.numel():
        flat[::PAGE].sum()


def run_child(variant: str, model_dir: Path) -> dict[str, float]:
    """Time one variant; returns seconds to embedding-ready and all-ready, RSS figures."""
    import mmap
    import threading

    import torch

    import preload
    from preload.memory import MADV_HUGEPAGE, MADV_POPULATE_READ, MADV_POPULATE_WRITE, buffer_address, madvise

    shards = sorted(model_dir.glob("*.safetensors"))
    base_rss = _rss_kb()
    marks: dict[str, float] = {}
    start = time.perf_counter()
    kind, _, arg = variant.partition(":")
    if kind in ("llmfn", "llmfn-read"):

        def on_event(event: preload.StageEvent) -> None:
            if event.kind == "end":
                marks[event.stage] = time.perf_counter() - start

        loaded = preload.load_checkpoint(
            model_dir, workers=int(arg), on_event=on_event, method="read" if kind == "llmfn-read" else "mmap"
        )
        embedding_s, total_s = marks["embedding"], marks["final"]
        del loaded
    elif kind == "load_file":
        from safetensors.torch import load_file

        embedding_s, kept_all = 0.0, {}
        for path in shards:
            tensors = load_file(path)
            kept_all.update(tensors)
            for name, tensor in tensors.items():
                _touch(tensor)
                if name == "model.embed_tokens.weight":
                    embedding_s = time.perf_counter() - start
        total_s = time.perf_counter() - start
    elif kind == "safe_open":
        from safetensors import safe_open

        embedding_s, kept = 0.0, []
        for path in shards:
            with safe_open(path, framework="pt") as fh:
                for name in fh.keys():  # noqa: SIM118  (safe_open has no __iter__)
                    tensor = fh.get_tensor(name)
                    _touch(tensor)
                    kept.append(tensor)
                    if name == "model.embed_tokens.weight":
                        embedding_s = time.perf_counter() - start
        total_s = time.perf_counter() - start
    elif kind == "from_pretrained":
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
        for param in model.parameters():
            _touch(param.data)
        total_s = time.perf_counter() - start
        embedding_s = float("nan")
    elif kind == "raw-preadv":
        from preload.memory import preadv_fully

        workers, chunk = int(arg), 16 << 20
        sizes = [p.stat().st_size for p in shards]
        arenas = [mmap.mmap(-1, s, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS) for s in sizes]
        jobs = []
        for path, size, arena in zip(shards, sizes, arenas, strict=True):
            address = buffer_address(arena)
            madvise(address, size, MADV_HUGEPAGE)
            madvise(address, size, MADV_POPULATE_WRITE)
            fd = os.open(path, os.O_RDONLY)
            view = memoryview(arena)
            jobs += [(fd, view, off, min(chunk, size - off)) for off in range(0, size, chunk)]
        lock, cursor = threading.Lock(), [0]

        def read_worker() -> None:
            while True:
                with lock:
                    if cursor[0] >= len(jobs):
                        return
                    fd, view, off, n = jobs[cursor[0]]
                    cursor[0] += 1
                preadv_fully(fd, [view[off : off + n]], off)

        threads = [threading.Thread(target=read_worker) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total_s, embedding_s = time.perf_counter() - start, float("nan")
    elif kind == "raw-mmap":
        maps = []

        def populate(path: Path) -> None:
            with open(path, "rb") as fh:
                mapping = mmap.mmap(
                    fh.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE
                )
            madvise(buffer_address(mapping), len(mapping), MADV_POPULATE_READ)
            maps.append(mapping)

        if arg == "1":  # one stream: the files one after another
            for path in shards:
                populate(path)
        else:  # one thread per file
            threads = [threading.Thread(target=populate, args=(p,)) for p in shards]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        total_s, embedding_s = time.perf_counter() - start, float("nan")
    else:
        raise SystemExit(f"unknown variant {variant}")
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "embedding_s": embedding_s,
        "total_s": total_s,
        "peak_rss_b": peak_kb * 1024,
        "base_rss_b": base_rss * 1024,
    }


# ---------------------------------------------------------------- parent side


def drop_cache(paths: list[Path]) -> None:
    """Evict the files from the page cache (``posix_fadvise(DONTNEED)`` per file)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def warm_cache(paths: list[Path]) -> None:
    """Read every file once so its pages are cached."""
    buffer = bytearray(64 << 20)
    for path in paths:
        with open(path, "rb") as fh:
            while fh.readinto(buffer):
                pass


def measure(variant: str, model_dir: Path) -> dict[str, float]:
    """Time ``variant`` in a fresh process."""
    return measure_together([variant], model_dir)[variant]


def measure_together(variants: list[str], model_dir: Path) -> dict[str, dict[str, float]]:
    """Run ``variants`` in turn in one fresh process (``--smoke``: torch imported once); each one's figures."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", ",".join(variants), "--dir", str(model_dir)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_OFFLINE": "1"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dir", type=Path, default=Path("/tmp/llmfn-bench/qwen3-4b"), help="checkpoint directory"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of layers and vocabulary (1.0 = 8.0 GB)"
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per variant and mode (median reported)")
    parser.add_argument("--modes", default="warm,cold", help="comma-separated: warm, cold")
    parser.add_argument(
        "--variants",
        default="llmfn:1,llmfn:2,llmfn:4,llmfn:8,llmfn-read:4,load_file,safe_open,from_pretrained,"
        "raw-preadv:4,raw-mmap,raw-mmap:1",
        help="comma-separated; llmfn:N / llmfn-read:N (N workers; mmap / owned memory), raw-preadv:N "
        "(N threads into fresh memory), raw-mmap (a thread per file) / raw-mmap:1 (files in turn)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds: one run of each kind of variant on the embedded tiny model ($LLMFN_CACHE); measures nothing",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    model_dir = (
        args.dir
        if args.scale == 1.0 or args.dir != parser.get_default("dir")
        else Path(f"{args.dir}-x{args.scale}")
    )
    if args.child:
        print(json.dumps({variant: run_child(variant, model_dir) for variant in args.child.split(",")}))
        return
    if args.smoke:
        from llmfn.local.tiny_model import ensure_tiny_model

        args.runs, model_dir = 1, ensure_tiny_model()
        if args.modes == parser.get_default("modes"):
            args.modes = "cold"  # each variant is a fresh process importing torch: one mode keeps it short
        if args.variants == parser.get_default("variants"):  # each branch of run_child once
            args.variants = SMOKE_VARIANTS
        paths = sorted(model_dir.glob("*.safetensors"))
        print("smoke: one run of each kind of variant on the tiny model; the figures below mean nothing")
    else:
        paths = generate(model_dir, args.scale)
    total = sum(p.stat().st_size for p in paths)
    print(
        f"checkpoint {model_dir}: {len(paths)} shards, {total:,} B ({', '.join(f'{p.stat().st_size / 1e9:.2f}' for p in paths)} GB)"
    )
    variants = args.variants.split(",")
    for mode in args.modes.split(","):
        results: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
        started = time.perf_counter()
        for _ in range(args.runs):
            if args.smoke:  # every branch once, in one process: nothing is measured
                drop_cache(paths) if mode == "cold" else warm_cache(paths)
                for variant, figures in measure_together(variants, model_dir).items():
                    results[variant].append(figures)
                continue
            for variant in variants:  # interleaved, so slow phases of a loaded machine hit every variant
                drop_cache(paths) if mode == "cold" else warm_cache(paths)
                results[variant].append(measure(variant, model_dir))
        print_table(mode, results, total, args.runs, time.perf_counter() - started)


def print_table(
    mode: str, results: dict[str, list[dict[str, float]]], total: int, runs: int, wall: float
) -> None:
    medians = {v: _median([r["total_s"] for r in rs]) for v, rs in results.items()}
    raw = [v for v in medians if v.startswith("raw-")]
    reference = min(raw, key=medians.__getitem__) if raw else None
    load_file = medians.get("load_file")
    print(
        f"\n{mode}: median of {runs} runs (spread = (max-min)/median); ratios to the fastest raw way ({reference}) and to load_file+touch"
    )
    header = f"{'variant':<18}{'embed s':>9}{'embed %':>8}{'all s':>8}{'spread':>8}{'GB/s':>7}{'peak RSS GB':>12}{'RSS/ckpt':>9}{'+RSS/ckpt':>10}{'x raw':>7}{'x load_file':>12}"
    print(header)
    print("-" * len(header))
    for variant, rs in results.items():
        all_s = medians[variant]
        embed = _median([r["embedding_s"] for r in rs])
        peak = _median([r["peak_rss_b"] for r in rs])
        extra = _median([r["peak_rss_b"] - r["base_rss_b"] for r in rs])
        embed_txt = "-" if embed != embed else f"{embed:.3f}"
        embed_pct = "-" if embed != embed else f"{100 * embed / all_s:.1f}"
        ratio_raw = f"{all_s / medians[reference]:.2f}" if reference else "-"
        ratio_lf = f"{all_s / load_file:.2f}" if load_file else "-"
        print(
            f"{variant:<18}{embed_txt:>9}{embed_pct:>8}{all_s:>8.3f}{100 * _spread([r['total_s'] for r in rs]):>7.0f}%"
            f"{total / all_s / 1e9:>7.2f}{peak / 1e9:>12.2f}{peak / total:>9.3f}{extra / total:>10.3f}{ratio_raw:>7}{ratio_lf:>12}"
        )
    print(f"({mode} table took {wall:.0f} s)")


if __name__ == "__main__":
    main()
