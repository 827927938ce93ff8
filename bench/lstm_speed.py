"""Forward+backward speed of the fused peephole LSTM stack against torch.nn.LSTM and the reference loop.

What is compared, on the same random float32 input, loss = sum of the outputs, backward to every
parameter (the input needs no gradient, as with data):

* fused     ``graves.nn.lstm.DeepLSTM(I, H, N, clip=a, fused=True)``: peephole cells, skip connections
            (layers n > 1 read [x, h^{n-1}], so their input is I + H wide), output = all layers
            concatenated, derivative clipping on (a = 10 for (a), 1 for (b), as in the paper);
* torch     ``torch.nn.LSTM(I, H, num_layers=N)``: no peepholes, no skip connections (layers n > 1
            read h^{n-1} only, input H wide), no clipping, output = last layer only. Its FLOPs are
            the same up to the I extra input columns of layers n > 1;
* reference ``DeepLSTM(..., fused=False)``: the same maths as fused, stepped with autograd;
* fused-bf16 the fused model run under ``graves.nn.lstm.matmul_dtype(torch.bfloat16)`` (the
            ``train.matmul_dtype = "bfloat16"`` deviation): its matrix products take bfloat16 operands,
            accumulate in float32 and are rounded once to bfloat16; state and gates stay float32.

Every configuration is timed side by side in one run: the reps interleave the models, and
the median of ``--reps`` timed reps (after one warm-up rep of each) is reported.

    python bench/lstm_speed.py [--reps 5] [--threads N] [--no-reference] [--shape N,H,I,B,T,CLIP]

``--shape`` replaces the two paper configurations by one of your own (CLIP may be "none").
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from graves.nn.lstm import DeepLSTM, matmul_dtype

CONFIGS = [
    # name, N, H, I, B, T, clip
    ("(a) 3 x 400, I=3, B=32, T=300", 3, 400, 3, 32, 300, 10.0),
    ("(b) 1 x 1000, I=50, B=64, T=100", 1, 1000, 50, 64, 100, 1.0),
]


def _fwd_bwd(model: torch.nn.Module, x: torch.Tensor, dtype: torch.dtype | None = None) -> float:
    model.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    with matmul_dtype(dtype):
        out = model(x)[0]
        out.sum().backward()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="timed reps per model (after 1 warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--no-reference", action="store_true", help="skip the (slow) reference loop")
    parser.add_argument("--shape", default=None, help="N,H,I,B,T,CLIP: time this shape instead")
    args = parser.parse_args()
    configs = CONFIGS
    if args.shape is not None:
        *dims, clip_s = args.shape.split(",")
        N, H, I, B, T = map(int, dims)
        clip = None if clip_s.lower() == "none" else float(clip_s)
        configs = [(f"(c) {N} x {H}, I={I}, B={B}, T={T}", N, H, I, B, T, clip)]

    torch.set_flush_denormal(True)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, reps {args.reps} (median), float32")

    ratios = []
    for name, N, H, I, B, T, clip in configs:
        torch.manual_seed(0)
        fused = DeepLSTM(I, H, N, clip=clip, fused=True)
        models = {  # name: (model, matmul dtype)
            "fused": (fused, None),
            "torch": (torch.nn.LSTM(I, H, num_layers=N), None),
            "fused-bf16": (fused, torch.bfloat16),
        }
        if not args.no_reference:
            models["reference"] = (DeepLSTM(I, H, N, clip=clip, fused=False), None)
        x = torch.randn(T, B, I)
        times: dict[str, list[float]] = {k: [] for k in models}
        for m, dtype in models.values():
            _fwd_bwd(m, x, dtype)  # warm-up
        for _ in range(args.reps):
            for k, (m, dtype) in models.items():  # interleaved, so load changes hit every model alike
                times[k].append(_fwd_bwd(m, x, dtype))
        med = {k: statistics.median(v) for k, v in times.items()}
        line = (f"{name}, clip {clip}: fused {med['fused'] * 1e3:.0f} ms, torch.nn.LSTM {med['torch'] * 1e3:.0f} ms, "
                f"fused with bf16 matmuls {med['fused-bf16'] * 1e3:.0f} ms")
        if "reference" in med:
            line += f", reference {med['reference'] * 1e3:.0f} ms"
        print(line)
        ratios.append((name.split()[0], med["fused"] / med["torch"], med.get("reference", float("nan")) / med["fused"],
                       med["fused"] / med["fused-bf16"]))

    print(
        "RATIOS "
        + "; ".join(f"{n}: fused/torch.nn.LSTM = {a:.2f}x, reference/fused = {b:.1f}x, fused/fused-bf16 = {c:.2f}x"
                    for n, a, b, c in ratios)
        + " (targets: <= 1.5x and >= 5x; the last is the speed-up of train.matmul_dtype = bfloat16)"
    )


if __name__ == "__main__":
    main()
