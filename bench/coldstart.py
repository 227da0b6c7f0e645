"""Benchmark: cold start to first token of ``python -m functions.serve``, beside the naive path and the floors.

Builds a Qwen3-architecture checkpoint with random bf16 weights (``--layers 28``: 1.02 GB in ~50 MB
shards, since moto reads a whole object for every ranged GET; Qwen3's 151,936-row embedding, hidden 1024), uploads it to moto's S3 server (started here, objects
kept in memory, sha256 in ``x-amz-meta-sha256``), then runs each variant ``--runs`` times, interleaved,
every run a fresh process with a cold page cache (``posix_fadvise(DONTNEED)`` on every shard first):

- ``llmfn local`` / ``llmfn s3``: ``python -m functions.serve --model DIR`` / ``--model-source s3://...``
  (streamed into memory, nothing on disk); a ``/v1/completions`` request (``max_tokens`` 1) is sent as soon
  as the process listens and waits for readiness (``--ready-wait-s``): time to first token from spawn.
  The stage breakdown is the server's own ``/readyz`` timeline.
- ``naive local`` / ``naive s3``: one process: (download every object with boto3's transfer manager,)
  ``AutoModelForCausalLM.from_pretrained``, tokenizer, ``generate(max_new_tokens=1)``.
- floors: ``imports`` (interpreter + torch, transformers, fastapi, uvicorn), ``raw read local`` (4 threads
  ``preadv`` of every shard byte into anonymous memory), ``raw ranged s3`` (8 threads of 16 MiB ranged GETs
  into memory, boto3 like llmfn's): each from spawn; the raw reads also report their read alone.

Prints medians of ``--runs`` (>= 5 for the note), spreads ((max - min) / median) and the goals' ratios.

    .venv/bin/python bench/coldstart.py --runs 5
    .venv/bin/python bench/coldstart.py --smoke   # seconds: proves every variant runs, measures nothing

``--smoke``: one run of every variant on the embedded tiny model (``llmfn.local.tiny_model``, built once
and cached under ``$LLMFN_CACHE`` as ``llmfn dev`` does; ~0.8 MB), the five child variants (floors and naive
paths) in turn in one fresh child process so that torch is imported once for them (each ``llmfn`` variant
is still its own server process); ``tests/bench`` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH_DIR]
sys.path.insert(0, str(_BENCH_DIR.parent))
REPO = _BENCH_DIR.parent
BUCKET, PREFIX = "llmfn-coldstart", "qwen3-random"
RANGE = 16 * 1024 * 1024
PROMPT = {"model": "bench", "prompt": "Hello there", "max_tokens": 1, "temperature": 0}


def build_checkpoint(out: Path, layers: int, smoke: bool = False) -> Path:
    """The bench's Qwen3 checkpoint (cached in ``out``); with ``smoke``, the embedded tiny model (cached
    under ``$LLMFN_CACHE``)."""
    from llmfn.local.tiny_model import TinyModelSpec, ensure_tiny_model

    if smoke:
        return ensure_tiny_model()
    spec = TinyModelSpec(
        vocab_size=151936,
        hidden_size=1024,
        intermediate_size=3072,
        num_hidden_layers=layers,
        num_attention_heads=8,
        num_key_value_heads=4,
        head_dim=128,
        max_position_embeddings=4096,
        max_shard_size="50MB",  # moto reads a whole object for every ranged GET: keep objects small
    )
    return ensure_tiny_model(out, spec)


def shards(model_dir: Path) -> list[Path]:
    return sorted(model_dir.glob("*.safetensors"))


def drop_cache(paths: list[Path]) -> None:
    """Evict the files from the page cache (``posix_fadvise(DONTNEED)`` per file)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


# -- children ---------------------------------------------------------------------------------------
def child(kind: str, model_dir: Path, endpoint: str) -> dict[str, float]:
    """Run one variant in this (fresh) process; the parent measures from spawn to the printed ``done``."""
    if kind == "imports":
        import fastapi  # noqa: F401
        import torch
        import transformers  # noqa: F401
        import uvicorn  # noqa: F401
        from transformers import Qwen3ForCausalLM  # noqa: F401

        return {"done": time.time()}
    if kind == "raw-local":
        import mmap
        from concurrent.futures import ThreadPoolExecutor

        from preload.memory import preadv_fully

        started = time.perf_counter()
        jobs = []
        keep = []
        for path in shards(model_dir):
            size = path.stat().st_size
            image = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            keep.append(image)
            fd = os.open(path, os.O_RDONLY)
            view = memoryview(image)
            jobs += [(fd, view[s : s + RANGE], s) for s in range(0, size, RANGE)]
        with ThreadPoolExecutor(4) as pool:
            total = sum(pool.map(lambda job: preadv_fully(job[0], [job[1]], job[2]), jobs))
        return {"done": time.time(), "read_s": time.perf_counter() - started, "bytes": total}
    if kind == "raw-s3":
        import mmap
        from concurrent.futures import ThreadPoolExecutor

        import boto3
        from botocore.config import Config

        client = boto3.client("s3", endpoint_url=endpoint, config=Config(max_pool_connections=32))
        started = time.perf_counter()
        objects = client.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX + "/")["Contents"]
        jobs, keep = [], []
        for obj in objects:
            if not obj["Key"].endswith(".safetensors"):
                continue
            image = mmap.mmap(-1, obj["Size"], flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            keep.append(image)
            view = memoryview(image)
            jobs += [(obj["Key"], s, view[s : s + RANGE]) for s in range(0, obj["Size"], RANGE)]

        def get(job: tuple[str, int, memoryview]) -> int:
            key, start, view = job
            body = client.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={start}-{start + len(view) - 1}")[
                "Body"
            ]
            done = 0
            while done < len(view):
                done += body.readinto(view[done:])
            return done

        with ThreadPoolExecutor(8) as pool:
            total = sum(pool.map(get, jobs))
        return {"done": time.time(), "read_s": time.perf_counter() - started, "bytes": total}
    if kind in ("naive-local", "naive-s3"):
        source = model_dir
        download_s = 0.0
        if kind == "naive-s3":
            import boto3

            started = time.perf_counter()
            client = boto3.client("s3", endpoint_url=endpoint)
            source = Path(tempfile.mkdtemp(prefix="llmfn-naive-"))
            for obj in client.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX + "/")["Contents"]:
                client.download_file(BUCKET, obj["Key"], str(source / obj["Key"].rsplit("/", 1)[-1]))
            download_s = time.perf_counter() - started
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        started = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.bfloat16).eval()
        tokenizer = AutoTokenizer.from_pretrained(source)
        loaded_s = time.perf_counter() - started
        ids = tokenizer(PROMPT["prompt"], return_tensors="pt")
        with torch.inference_mode():
            model.generate(**ids, max_new_tokens=1, do_sample=False)
        if kind == "naive-s3":
            shutil.rmtree(source, ignore_errors=True)
        return {"done": time.time(), "download_s": download_s, "from_pretrained_s": loaded_s}
    raise SystemExit(f"unknown child {kind}")


CHILD_OF = {
    "floor: imports": "imports",
    "floor: raw read local": "raw-local",
    "floor: raw ranged s3": "raw-s3",
    "naive local": "naive-local",
    "naive s3": "naive-s3",
}
"""The variants a child process runs (the others are ``functions.serve`` processes), and their child kind."""


def run_child(kind: str, model_dir: Path, endpoint: str) -> dict[str, float]:
    """Run one child variant in a fresh process; its result, ``ttft_s`` measured from spawn."""
    return run_children([kind], model_dir, endpoint)[kind]


def run_children(kinds: list[str], model_dir: Path, endpoint: str) -> dict[str, dict[str, float]]:
    """Run ``kinds`` in turn in one fresh process (``--smoke``: torch imported once); each one's result,
    ``ttft_s`` from the spawn to its ``done``."""
    env = {
        **os.environ,
        "TRANSFORMERS_VERBOSITY": "error",
        "HF_HUB_OFFLINE": "1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    started = time.time()
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            ",".join(kinds),
            "--dir",
            str(model_dir),
            "--endpoint",
            endpoint,
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    results = json.loads(out.stdout.strip().splitlines()[-1])
    return {kind: {**result, "ttft_s": result["done"] - started} for kind, result in results.items()}


def run_serve(model_args: list[str], endpoint: str, cache: Path) -> dict[str, object]:
    """Spawn ``functions.serve``; time from spawn to the first token of a request sent once it listens."""
    import socket

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "AWS_ENDPOINT_URL": endpoint,
        "LLMFN_CACHE": str(cache),
        "TRANSFORMERS_VERBOSITY": "error",
    }
    args = [*model_args, "--model-name", "bench", "--port", str(port), "--ready-wait-s", "600"]
    args += ["--no-access-log", "--log-level", "warning"]
    started = time.time()
    process = subprocess.Popen(
        [sys.executable, "-m", "functions.serve", *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=600) as client:
            while True:
                try:
                    response = client.post(url + "/v1/completions", json=PROMPT)
                    break
                except httpx.TransportError:
                    if process.poll() is not None:
                        raise RuntimeError(process.stderr.read().decode()) from None  # type: ignore[union-attr]
                    time.sleep(0.01)
            first_token = time.time()
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.text}")
            timeline = client.get(url + "/readyz").json()["timeline"]
    finally:
        process.terminate()
        process.wait(30)
    return {"ttft_s": first_token - started, "timeline": timeline}


# -- parent -----------------------------------------------------------------------------------------
def start_moto(model_dir: Path) -> tuple[object, str]:
    os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(2**31))  # objects in memory, not temp files
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    import hashlib
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    for path in sorted(p for p in model_dir.iterdir() if p.is_file()):
        data = path.read_bytes()
        client.put_object(
            Bucket=BUCKET,
            Key=f"{PREFIX}/{path.name}",
            Body=data,
            Metadata={"sha256": hashlib.sha256(data).hexdigest()},
        )
    return server, endpoint


def steps(timeline: dict[str, object]) -> dict[str, dict[str, float]]:
    return {row["name"]: row for row in timeline["stages"]}  # type: ignore[index,union-attr]


def med(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--layers", type=int, default=28)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "llmfn-bench-coldstart")
    parser.add_argument("--child", default=None)
    parser.add_argument("--endpoint", default="")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds: one run of every variant on the embedded tiny model ($LLMFN_CACHE); measures nothing",
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps({kind: child(kind, args.dir, args.endpoint) for kind in args.child.split(",")}))
        return
    if args.smoke:
        args.runs = 1
        print("smoke: one run of every variant on the tiny model; the figures below mean nothing")
    model_dir = build_checkpoint(args.dir, args.layers, smoke=args.smoke)
    files = shards(model_dir)
    total = sum(p.stat().st_size for p in files)
    print(
        f"checkpoint: {model_dir}: {len(files)} shards, {total:,} B ({total / 1e9:.2f} GB), bf16 random weights"
    )
    server, endpoint = start_moto(model_dir)
    cache_root = Path(tempfile.mkdtemp(prefix="llmfn-bench-cache-"))
    variants = [
        "floor: imports",
        "floor: raw read local",
        "floor: raw ranged s3",
        "llmfn local",
        "naive local",
        "llmfn s3",
        "naive s3",
    ]
    results: dict[str, list[dict[str, object]]] = {v: [] for v in variants}
    wall = time.perf_counter()
    try:
        drop_cache(files)
        together = run_children(list(CHILD_OF.values()), model_dir, endpoint) if args.smoke else {}
        for run in range(args.runs):
            for variant in variants:
                drop_cache(files)
                cache = cache_root / f"{run}-{variant.replace(' ', '_').replace(':', '')}"
                result: dict[str, object]
                if variant in CHILD_OF:
                    kind = CHILD_OF[variant]
                    result = together[kind] if together else run_child(kind, model_dir, endpoint)
                elif variant == "llmfn local":
                    result = run_serve(["--model", str(model_dir)], endpoint, cache)
                else:
                    result = run_serve(["--model-source", f"s3://{BUCKET}/{PREFIX}"], endpoint, cache)
                shutil.rmtree(cache, ignore_errors=True)
                results[variant].append(result)
                print(f"  run {run + 1}/{args.runs} {variant:<22} {result['ttft_s']:.2f} s", flush=True)
    finally:
        server.stop()  # type: ignore[attr-defined]
        shutil.rmtree(cache_root, ignore_errors=True)
    print_table(results, total, args.runs, time.perf_counter() - wall)


def print_table(results: dict[str, list[dict[str, object]]], total: int, runs: int, wall: float) -> None:
    def ttft(variant: str) -> list[float]:
        return [float(r["ttft_s"]) for r in results[variant]]  # type: ignore[arg-type]

    print(
        f"\ncold start to first token, {total / 1e9:.2f} GB, medians of {runs} fresh processes, cold page cache"
    )
    print(f"{'variant':<24}{'to token s':>11}{'spread':>8}  breakdown (medians, s from process start)")
    for variant in results:
        values = ttft(variant)
        note = ""
        rows = results[variant]
        if variant.startswith("llmfn"):
            timelines = [steps(r["timeline"]) for r in rows]  # type: ignore[arg-type]
            parts = []
            for name in ("interpreter", "imports", "fetch", "weights", "skeleton", "engine"):
                ends = [t[name]["end_s"] for t in timelines if name in t]
                starts = [t[name]["start_s"] for t in timelines if name in t]
                if ends:
                    parts.append(f"{name} {med(starts):.2f}-{med(ends):.2f}")
            ready = med([float(r["timeline"]["ready_s"]) for r in rows])  # type: ignore[index]
            note = ", ".join(parts) + f"; ready {ready:.2f}"
        elif "read_s" in rows[0]:
            read = [float(r["read_s"]) for r in rows]  # type: ignore[arg-type]
            note = f"read alone {med(read):.2f} s ({total / med(read) / 1e9:.2f} GB/s)"
        elif "from_pretrained_s" in rows[0]:
            down = med([float(r["download_s"]) for r in rows])  # type: ignore[arg-type]
            fp = med([float(r["from_pretrained_s"]) for r in rows])  # type: ignore[arg-type]
            note = (f"download {down:.2f}, " if down else "") + f"from_pretrained {fp:.2f}"
        print(f"{variant:<24}{med(values):>11.2f}{spread(values):>8.0%}  {note}")

    imports, raw_local = med(ttft("floor: imports")), med(ttft("floor: raw read local"))
    raw_s3 = med(ttft("floor: raw ranged s3"))
    raw_s3_read = med([float(r["read_s"]) for r in results["floor: raw ranged s3"]])  # type: ignore[arg-type]
    local, naive_local = med(ttft("llmfn local")), med(ttft("naive local"))
    s3, naive_s3 = med(ttft("llmfn s3")), med(ttft("naive s3"))
    s3_timelines = [steps(r["timeline"]) for r in results["llmfn s3"]]  # type: ignore[arg-type]
    s3_stream = med([t["weights"]["end_s"] - t["fetch"]["start_s"] for t in s3_timelines])

    def goal(label: str, value: float, limit: float, at_most: bool) -> None:
        met = value <= limit if at_most else value >= limit
        print(
            f"  {label:<72}{value:>6.2f}x  goal {'<=' if at_most else '>='} {limit:g}x  {'MET' if met else 'MISSED'}"
        )

    print("\ngoals")
    goal(
        "llmfn local to first token / (imports floor + raw read local)",
        local / (imports + raw_local),
        1.25,
        True,
    )
    goal("naive local / llmfn local (to first token)", naive_local / local, 2.0, False)
    goal(
        "llmfn s3 stream (fetch start -> weights resident) / raw ranged read alone",
        s3_stream / raw_s3_read,
        1.2,
        True,
    )
    goal(
        "llmfn s3 to first token / (imports floor + raw ranged s3 from spawn)",
        s3 / (imports + raw_s3),
        1.2,
        True,
    )
    print(f"  {'naive s3 / llmfn s3 (to first token)':<72}{naive_s3 / s3:>6.2f}x")
    print(f"\nwall {wall:.0f} s")


if __name__ == "__main__":
    main()
