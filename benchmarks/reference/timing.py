"""What the reference scripts share: strict FP32 set-up, the device's description, timing a step
as the harness does, and one JSON line in the harness's schema (untangle-bench/1)."""
import platform
import statistics
import time

import torch


def setup(threads):
    """FP32 without TF32 on matmuls and cuDNN convolutions, `threads` CPU threads, seed 1."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    torch.set_num_threads(threads)
    torch.manual_seed(1)


def device_info(device):
    """(name, device type, driver, platform) of a torch device, as the harness names them."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return props.name, "gpu", f"CUDA {torch.version.cuda}", "PyTorch CUDA"
    name = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            name = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name} ({torch.get_num_threads()} threads)", "cpu", f"torch {torch.__version__}", "PyTorch CPU"


def time_step(step, warmup, repeats, device):
    """Wall-clock milliseconds of `repeats` calls of step() after `warmup` untimed ones,
    synchronised on CUDA."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def record(info, case, shape, times, **extra):
    """The JSON line of one models-suite case; `extra` adds the script's own fields."""
    name, dtype, driver, plat = info
    med = median(times)
    line = {"schema": "untangle-bench/1", "framework": f"pytorch {torch.__version__}", "device": name,
            "device_type": dtype, "driver": driver, "platform": plat, "suite": "models", "case": case,
            "shape": shape, "size": "reference", "ms": {"median": med, "min": min(times), "max": max(times)},
            "timing": "wall", "repeats": len(times), "gflops": None, "gbps": None, "pct_peak": None}
    line.update(extra)
    line["mean_ms"] = statistics.mean(times)
    return line


def median(times):
    """The lower median, as the harness takes it."""
    return sorted(times)[(len(times) - 1) // 2]
