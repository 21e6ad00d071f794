"""The CPU's float32 matmul throughput, the yardstick of the demo-speed target (BENCHMARKS.md):
demo seconds x GFLOP/s <= 15,480.  python benchmarks/matmul_gflops.py"""
import time

import torch


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(size, size, generator=generator), torch.randn(size, size, generator=generator)
    for _ in range(3):  # warm-up
        a @ b
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


if __name__ == "__main__":
    print(f"{matmul_gflops():.1f} GFLOP/s (float32 2048x2048, best of 10, {torch.get_num_threads()} threads)")
