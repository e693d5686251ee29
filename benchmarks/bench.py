"""Side-by-side benchmarks: mlstm against Keras 3 (TensorFlow) and PyTorch on the CPU.

``python benchmarks/run.py`` (or ``python -m benchmarks``) times, for each size of the demo
model (two inputs, an LSTM each, concatenate, a linear and a sigmoid head, MSE + BCE weighted
0.7/0.3, Adam), a training step (forward + backward + Adam) and a forward pass (predict);
and the same for the classification model of :mod:`classification` (Embedding + LSTM +
softmax head + categorical cross-entropy, Adam) at its size ``CLS-M`` and the Bidirectional
model of :mod:`bilstm` (Bidirectional(LSTM) + softmax head, CCE, Adam) at ``BiLSTM-M``:

- each framework runs in its own subprocess (a :class:`Worker`), all with the same thread
  count; the orchestrator asks them in turn, rotating the order every round, so that the
  machine's noise falls on all of them alike;
- every worker warms up first; times are medians (with min and max) over all rounds;
- the machine's sustained float32 GEMM rate is measured (NumPy and PyTorch; the faster is
  used) and every time is also given as a multiple of the *GEMM bound*: the GEMM FLOPs the
  step cannot avoid (:func:`gemm_flops`) divided by that rate;
- the peak memory of one step: growth of the resident set (all frameworks) and, for mlstm,
  the exact peak of NumPy allocations (tracemalloc), against what the backward pass must keep
  (:func:`backward_must_keep_bytes`).

Output: a Markdown table (times and ratios to mlstm), a JSON file with every sample, and a
PNG chart when matplotlib is installed. Keras, TensorFlow, PyTorch and matplotlib are
imported only inside the workers and functions that use them.

OpenBLAS: if ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` are set they can slow a current
NumPy; the workers run without both unless ``--keep-openblas-env`` is given, and each
worker reports the OpenBLAS kernel it runs (threadpoolctl when installed, else the OpenBLAS
library's own ``get_corename``).
"""
from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import json
import os
import platform
import subprocess
import sys
import time
import traceback

import numpy as np

from mlstm.demo import DEMO_LOSS_WEIGHTS

if __package__:
    from . import bilstm, classification
else:       # run as a script (run.py, or a worker): benchmarks/ is on sys.path
    import bilstm
    import classification

__all__ = ["SIZES", "ALL_SIZES", "case_class", "FRAMEWORKS", "gemm_flops",
           "backward_must_keep_bytes", "demo_model", "run_benchmark", "format_tables",
           "format_targets", "target_rows", "plot_chart", "cli_main", "Worker"]

#: The demo model's sizes: N batch, T time, D features per input, H units, O (out1, out2).
SIZES = {
    "S": dict(N=32, T=20, D=8, H=32, O=(1, 1)),
    "M": dict(N=64, T=50, D=32, H=128, O=(4, 1)),
    "L": dict(N=128, T=100, D=64, H=256, O=(4, 1)),
}
FRAMEWORKS = ("mlstm", "keras", "torch")
LABELS = {"mlstm": "mlstm", "keras": "Keras", "torch": "PyTorch"}
#: Timed repetitions per framework, per round and per kind of step.
#: The other models' modules (each with SIZES, REPS, CASES, gemm_flops,
#: backward_must_keep_bytes): the classification model (issue 12), the Bidirectional (13).
OTHER_MODELS = (classification, bilstm)
REPS = {"S": 20, "M": 6, "L": 2, **{k: v for m in OTHER_MODELS for k, v in m.REPS.items()}}
#: Every size the benchmark runs: the demo model's and the other models'.
ALL_SIZES = {**SIZES, **{k: v for m in OTHER_MODELS for k, v in m.SIZES.items()}}
OPENBLAS_TUNING_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
LEARNING_RATE = 1e-3


# --------------------------------------------------------------------------- accounting
def _other_model(size):
    """The module of :data:`OTHER_MODELS` that has ``size``, else None (the demo's)."""
    return next((m for m in OTHER_MODELS if size in m.SIZES), None)


def gemm_flops(size):
    """GEMM FLOPs (multiply + add = 2) of one forward pass and one training step.

    Per LSTM (N, T, D, H): the input projection ``2 N T D 4H`` and the recurrence
    ``2 N T H 4H``; its backward ``dW`` (``2 N T D 4H``), ``dU`` and ``dh_{t-1}`` (each
    ``2 N T H 4H``). The gradient with respect to the model inputs is not needed for
    training and is not counted. Heads: ``2 N 2H O`` forward, twice that backward.

    Returns
    -------
    dict with ``forward`` and ``train`` (forward + backward) FLOPs.
    """
    if isinstance(size, str) and _other_model(size) is not None:
        return _other_model(size).gemm_flops(size)
    s = SIZES[size] if isinstance(size, str) else size
    N, T, D, H = s["N"], s["T"], s["D"], s["H"]
    projection, recurrence = 2 * N * T * D * 4 * H, 2 * N * T * H * 4 * H
    heads = sum(2 * N * 2 * H * o for o in s["O"])
    forward = 2 * (projection + recurrence) + heads
    backward = 2 * (projection + 2 * recurrence) + 2 * heads
    return {"forward": forward, "train": forward + backward}


def backward_must_keep_bytes(size, itemsize=4):
    """Bytes the backward pass must keep from the forward: the gates and states of every step.

    Per LSTM and step: the four activated gates (4H) and the state entering the step,
    h_{t-1} and c_{t-1} (2H), for all N samples: ``2 LSTMs x T N 6H x itemsize``.
    """
    if isinstance(size, str) and _other_model(size) is not None:
        return _other_model(size).backward_must_keep_bytes(size, itemsize)
    s = SIZES[size] if isinstance(size, str) else size
    return 2 * s["T"] * s["N"] * 6 * s["H"] * itemsize


def make_data(size, seed=0):
    """The same float32 inputs and targets for every framework: ``([x1, x2], [y1, y2])``."""
    s = SIZES[size]
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((s["N"], s["T"], s["D"])).astype(np.float32) for _ in range(2)]
    ys = [rng.standard_normal((s["N"], s["O"][0])).astype(np.float32),
          (rng.random((s["N"], s["O"][1])) < 0.5).astype(np.float32)]
    return xs, ys


# --------------------------------------------------------------------------- cases (in workers)
def demo_model(size):
    """The demo model at ``size``, compiled with the benchmark's losses and Adam (mlstm)."""
    from mlstm.demo import build_demo_model, compile_demo_model

    s = SIZES[size]
    model = build_demo_model(timesteps=s["T"], features=(s["D"], s["D"]), units=s["H"],
                             outputs=s["O"], seed=0)
    return compile_demo_model(model, LEARNING_RATE)


class MlstmCase:
    """The demo model in mlstm: ``train_on_batch`` and ``predict_on_batch``."""

    name = "mlstm"

    def __init__(self, size, threads):
        self.xs, self.ys = make_data(size)
        self.model = demo_model(size)

    def steps(self):
        return {"train": lambda: self.model.train_on_batch(self.xs, self.ys),
                "forward": lambda: self.model.predict_on_batch(self.xs)}


class KerasCase:
    """The demo model in Keras 3 (TensorFlow backend): ``train_on_batch``, and two forward
    variants, ``predict_on_batch`` and a ``tf.function``-compiled call; the faster counts."""

    name = "keras"

    def __init__(self, size, threads):
        import tensorflow as tf

        from mlstm.interop.keras import to_keras

        self.xs, self.ys = make_data(size)
        # The mlstm demo model translated: same graph, options, weights, losses and Adam.
        self.model = to_keras(demo_model(size))
        self.tensors = [tf.constant(x) for x in self.xs]
        self.call = tf.function(lambda a, b: self.model([a, b], training=False))
        self.jit_compile = bool(getattr(self.model, "jit_compile", False))

    def steps(self):
        def compiled_call():
            return [t.numpy() for t in self.call(*self.tensors)]

        return {"train": lambda: self.model.train_on_batch(self.xs, self.ys),
                "forward": lambda: self.model.predict_on_batch(self.xs),
                "forward_compiled_call": compiled_call}


class TorchCase:
    """The demo model in PyTorch: two ``nn.LSTM``, concatenation of their last hidden
    states, two ``nn.Linear`` heads; loss 0.7 MSE + 0.3 BCE-with-logits; ``torch.optim.Adam``
    (eps 1e-7 as Keras). Forward under ``torch.inference_mode``, sigmoid applied."""

    name = "torch"

    def __init__(self, size, threads):
        import torch
        from torch import nn

        s = SIZES[size]
        torch.manual_seed(0)
        xs, ys = make_data(size)
        self.xs = [torch.from_numpy(x) for x in xs]
        self.ys = [torch.from_numpy(y) for y in ys]

        class DemoModel(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm_a = nn.LSTM(s["D"], s["H"], batch_first=True)
                self.lstm_b = nn.LSTM(s["D"], s["H"], batch_first=True)
                self.out1 = nn.Linear(2 * s["H"], s["O"][0])
                self.out2 = nn.Linear(2 * s["H"], s["O"][1])

            def forward(self, x1, x2):
                _, (h_a, _) = self.lstm_a(x1)
                _, (h_b, _) = self.lstm_b(x2)
                merged = torch.cat([h_a[-1], h_b[-1]], dim=1)
                return self.out1(merged), self.out2(merged)   # out2 as logits

        self.torch = torch
        self.model = DemoModel()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LEARNING_RATE, eps=1e-7)
        self.mse, self.bce = nn.MSELoss(), nn.BCEWithLogitsLoss()

    def steps(self):
        torch, model = self.torch, self.model

        def train():
            self.optimizer.zero_grad(set_to_none=True)
            out1, logits2 = model(*self.xs)
            loss = (DEMO_LOSS_WEIGHTS[0] * self.mse(out1, self.ys[0])
                    + DEMO_LOSS_WEIGHTS[1] * self.bce(logits2, self.ys[1]))
            loss.backward()
            self.optimizer.step()
            return float(loss.detach())

        def forward():
            with torch.inference_mode():
                out1, logits2 = model(*self.xs)
                return out1.numpy(), torch.sigmoid(logits2).numpy()

        return {"train": train, "forward": forward}


CASES = {"mlstm": MlstmCase, "keras": KerasCase, "torch": TorchCase}


def case_class(framework, size):
    """The framework's case for ``size``: the demo model's, or another model's."""
    other = _other_model(size)
    return (CASES if other is None else other.CASES)[framework]


# --------------------------------------------------------------------------- machine facts
def gemm_rate(framework, n=1024, seconds=1.5):
    """Sustained float32 GEMM rate (FLOP/s): median over back-to-back (n, n) @ (n, n) calls."""
    if framework == "torch":
        import torch
        a, b, c = torch.rand(n, n), torch.rand(n, n), torch.empty(n, n)

        def call():
            torch.mm(a, b, out=c)
    else:
        rng = np.random.default_rng(0)
        a, b = (rng.random((n, n), dtype=np.float32) for _ in range(2))
        c = np.empty((n, n), dtype=np.float32)

        def call():
            np.matmul(a, b, out=c)
    for _ in range(3):
        call()
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 5:
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / float(np.median(times))


def blas_info():
    """The BLAS libraries loaded in this process: kernel (core) name, threads, version."""
    try:
        import threadpoolctl
        return [{"source": "threadpoolctl", "library": d.get("internal_api"),
                 "path": d.get("filepath"), "version": d.get("version"),
                 "threads": d.get("num_threads"), "corename": d.get("architecture")}
                for d in threadpoolctl.threadpool_info() if d.get("user_api") == "blas"]
    except ImportError:
        pass
    libs = []
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps
                            if "openblas" in line.lower() and line.split()[-1].startswith("/")})
    except OSError:
        return libs
    for path in paths:
        lib = ctypes.CDLL(path)
        entry = {"source": "get_corename", "library": "openblas", "path": path}
        for key, names in (("corename", ("scipy_openblas_get_corename64_",
                                         "scipy_openblas_get_corename",
                                         "openblas_get_corename64_", "openblas_get_corename")),
                           ("config", ("scipy_openblas_get_config64_", "scipy_openblas_get_config",
                                       "openblas_get_config64_", "openblas_get_config"))):
            for name in names:
                fn = getattr(lib, name, None)
                if fn is not None:
                    fn.restype = ctypes.c_char_p
                    entry[key] = fn().decode()
                    break
        for name in ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                     "openblas_get_num_threads64_", "openblas_get_num_threads"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_int
                entry["threads"] = fn()
                break
        libs.append(entry)
    return libs


def _proc_status_kib(key):
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss():
    """Release freed heap pages and reset VmHWM (Linux); False when not possible."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure_memory(step, traced=False, release=None):
    """Peak memory of one call of ``step``.

    ``rss_growth_bytes``: the resident set's high-water mark during the call minus the
    resident set just before it (freed heap pages released first), for any framework.
    With ``traced``, also ``traced_peak_bytes``: the peak of Python/NumPy allocations above
    those alive before the call (tracemalloc; exact for NumPy arrays). ``release`` is called
    before each measured call to drop memory kept for reuse (mlstm's buffer pool), so that
    the step's arrays count as allocated within it.
    """
    result = {}
    release = release or (lambda: None)
    release()
    gc.collect()
    if _reset_peak_rss():
        before = _proc_status_kib("VmRSS")
        step()
        peak = _proc_status_kib("VmHWM")
        result["rss_growth_bytes"] = (peak - before) * 1024
    if traced:
        import tracemalloc
        release()
        gc.collect()
        tracemalloc.start()
        start = tracemalloc.get_traced_memory()[0]
        step()
        result["traced_peak_bytes"] = tracemalloc.get_traced_memory()[1] - start
        tracemalloc.stop()
    return result


def _own_cpu_seconds():
    """CPU seconds used by this process (all its threads) so far."""
    t = os.times()
    return t.user + t.system


def machine_busy_seconds():
    """CPU seconds all CPUs of the machine spent busy since boot (Linux), else None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)      # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def time_calls(fn, reps):
    """Wall times (s) of ``reps`` calls of ``fn``."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def warm_up(steps, min_calls=3, min_seconds=1.0):
    """Call each step until it ran ``min_calls`` times and ``min_seconds`` passed."""
    for fn in steps.values():
        start, calls = time.perf_counter(), 0
        while calls < min_calls or time.perf_counter() - start < min_seconds:
            fn()
            calls += 1


# --------------------------------------------------------------------------- worker process
def _framework_versions(framework):
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    if framework == "mlstm":
        import scipy
        from mlstm import __version__
        versions.update(mlstm=__version__, scipy=scipy.__version__)
    elif framework == "keras":
        import keras
        import tensorflow as tf
        versions.update(keras=keras.__version__, tensorflow=tf.__version__)
    elif framework == "torch":
        import torch
        versions.update(torch=torch.__version__)
    return versions


def _configure_threads(framework, threads):
    if framework == "keras":
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    elif framework == "torch":
        import torch
        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)


def worker_main(framework, threads):
    """Serve requests (one JSON object per line on stdin), answer one JSON line each.

    Requests: ``{"cmd": "info"}``, ``{"cmd": "gemm_rate"}``, ``{"cmd": "setup", "size": S}``,
    ``{"cmd": "time", "step": name, "reps": k}``, ``{"cmd": "memory"}``, ``{"cmd": "quit"}``.
    """
    # Answers go to a private copy of stdout; anything a framework prints goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _configure_threads(framework, threads)
    case, steps = None, {}
    for line in sys.stdin:
        request = json.loads(line)
        cmd = request["cmd"]
        try:
            if cmd == "quit":
                break
            if cmd == "info":
                answer = {"versions": _framework_versions(framework), "blas": blas_info(),
                          "env": {k: os.environ.get(k) for k in
                                  OPENBLAS_TUNING_VARIABLES + ("OPENBLAS_NUM_THREADS",
                                                               "OMP_NUM_THREADS")}}
                if framework == "mlstm":
                    from mlstm import parallel
                    answer["mlstm_threads"] = parallel.get_num_threads()
                    answer["mlstm_blas_controllable"] = parallel.blas_controllable()
                if framework == "torch":
                    import torch
                    answer["torch_threads"] = torch.get_num_threads()
                    answer["torch_build"] = [
                        part.strip() for line in torch.__config__.show().splitlines()
                        for part in line.split(",")
                        if any(k in part for k in ("BLAS_INFO", "CPU capability", "USE_MKLDNN"))]
            elif cmd == "gemm_rate":
                answer = {"flops_per_s": gemm_rate(framework)}
            elif cmd == "setup":
                case = steps = None
                gc.collect()
                case = case_class(framework, request["size"])(request["size"], threads)
                steps = case.steps()
                t0 = time.perf_counter()
                warm_up(steps)
                answer = {"warmup_s": time.perf_counter() - t0,
                          "jit_compile": getattr(case, "jit_compile", None)}
                if framework == "keras":
                    import tensorflow as tf  # blas_info after TF has loaded its libraries
                    answer["onednn"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)")
                answer["steps"] = list(steps)
            elif cmd == "time":
                answer = {"times_s": time_calls(steps[request["step"]], request["reps"])}
            elif cmd == "memory":
                if framework == "mlstm":
                    from mlstm.ops.lstm import BUFFERS
                    answer = measure_memory(steps["train"], traced=True, release=BUFFERS.clear)
                    steps["train"]()
                    answer["kept_for_reuse_bytes"] = BUFFERS.nbytes
                else:
                    answer = measure_memory(steps["train"])
            elif cmd == "cpu_seconds":
                answer = {"cpu_s": _own_cpu_seconds()}
            else:
                raise ValueError(f"unknown request {cmd!r}")
        except Exception:  # report to the orchestrator instead of dying silently
            answer = {"error": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")


class Worker:
    """One framework's subprocess (``python benchmarks/bench.py --worker FRAMEWORK``)."""

    def __init__(self, framework, threads=2, keep_openblas_env=False, log=None):
        self.framework = framework
        env = dict(os.environ)
        self.removed_env = {}
        if not keep_openblas_env:
            for key in OPENBLAS_TUNING_VARIABLES:
                if key in env:
                    self.removed_env[key] = env.pop(key)
        for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[key] = str(threads)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["KERAS_BACKEND"] = "tensorflow"
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", framework,
             "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log or subprocess.DEVNULL,
            text=True, env=env, bufsize=1)

    def request(self, cmd, **kwargs):
        self.process.stdin.write(json.dumps(dict(cmd=cmd, **kwargs)) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.framework} worker exited (code {self.process.wait()})")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.framework} worker failed on {cmd}:\n{answer['error']}")
        return answer

    def close(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()


def available_frameworks(requested):
    """The requested frameworks whose packages are importable (mlstm always is)."""
    import importlib.util
    needs = {"mlstm": (), "keras": ("keras", "tensorflow"), "torch": ("torch",)}
    found, missing = [], {}
    for fw in requested:
        absent = [m for m in needs[fw] if importlib.util.find_spec(m) is None]
        if absent:
            missing[fw] = absent
        else:
            found.append(fw)
    return found, missing


# --------------------------------------------------------------------------- orchestration
def _summary(times_s):
    ms = np.asarray(times_s) * 1e3
    return {"median_ms": float(np.median(ms)), "min_ms": float(ms.min()),
            "max_ms": float(ms.max()), "n": int(ms.size), "samples_ms": ms.round(4).tolist()}


def run_benchmark(sizes=tuple(ALL_SIZES), frameworks=FRAMEWORKS, rounds=5, threads=2,
                  reps=None, keep_openblas_env=False, log=None, echo=print, settle=0.3):
    """Time every framework at every size; returns the results dict (see module docstring).

    ``settle`` seconds pass between two workers' turns: a framework's worker threads spin
    for a while after their work (OpenMP, OpenBLAS, Eigen), which would otherwise land on
    the next framework's timings.
    """
    frameworks, missing = available_frameworks(frameworks)
    reps = dict(REPS, **(reps or {}))
    results = {
        "meta": {
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                        "cpu": _cpu_model()},
            "threads": threads, "rounds": rounds, "reps_per_round": reps, "settle_s": settle,
            "frameworks": frameworks, "missing": missing,
            "dtype": "float32",
        },
        "sizes": {},
    }
    workers = {}
    try:
        for fw in frameworks:
            workers[fw] = Worker(fw, threads, keep_openblas_env, log)
        meta = results["meta"]
        meta["openblas_env_removed"] = next(iter(workers.values())).removed_env
        meta["workers"] = {fw: w.request("info") for fw, w in workers.items()}
        rates = {fw: workers[fw].request("gemm_rate")["flops_per_s"]
                 for fw in ("mlstm", "torch") if fw in workers}
        meta["gemm_rate_flops_per_s"] = {("numpy" if fw == "mlstm" else fw): r
                                         for fw, r in rates.items()}
        echo("sustained float32 GEMM rate: " + ", ".join(
            f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in meta["gemm_rate_flops_per_s"].items()))
        for size in sizes:
            results["sizes"][size] = _run_size(size, workers, rounds, reps[size], echo, settle)
        # Measured again at the end: the machine is shared, its rate may have changed.
        for fw in rates:
            rates[fw] = max(rates[fw], workers[fw].request("gemm_rate")["flops_per_s"])
        meta["gemm_rate_flops_per_s"] = {("numpy" if fw == "mlstm" else fw): r
                                         for fw, r in rates.items()}
        meta["gemm_rate_used"] = max(rates.values())
        meta["load_average_end"] = list(os.getloadavg())
    finally:
        for w in workers.values():
            w.close()
    _add_gemm_bounds(results)
    return results


def _run_size(size, workers, rounds, reps, echo, settle):
    busy0, wall0 = machine_busy_seconds(), time.perf_counter()
    own0 = sum(w.request("cpu_seconds")["cpu_s"] for w in workers.values())
    entry = {"shape": {k: (list(v) if isinstance(v, tuple) else v)
                       for k, v in ALL_SIZES[size].items()},
             "gemm_flops": gemm_flops(size),
             "backward_must_keep_bytes": backward_must_keep_bytes(size),
             "load_average_start": list(os.getloadavg()), "frameworks": {}}
    step_names = {}
    for fw, w in workers.items():
        answer = w.request("setup", size=size)
        step_names[fw] = answer.pop("steps")
        entry["frameworks"][fw] = {"setup": answer}
    samples = {fw: {name: [] for name in step_names[fw]} for fw in workers}
    order = list(workers)
    for r in range(rounds):
        rotated = order[r % len(order):] + order[:r % len(order)]
        for kind in ("train", "forward"):
            for fw in rotated:
                for name in step_names[fw]:
                    if name == kind or (kind == "forward" and name.startswith("forward_")):
                        time.sleep(settle)
                        samples[fw][name] += workers[fw].request(
                            "time", step=name, reps=reps)["times_s"]
    for fw, w in workers.items():
        stats = {name: _summary(t) for name, t in samples[fw].items()}
        fwd_names = [n for n in stats if n.startswith("forward")]
        best = min(fwd_names, key=lambda n: stats[n]["median_ms"])
        stats["forward_best"] = dict(stats[best], variant=best)
        entry["frameworks"][fw].update(stats)
        entry["frameworks"][fw]["memory"] = w.request("memory")
    entry["load_average_end"] = list(os.getloadavg())
    # CPU time the machine spent on anything but the workers, per second of the run.
    own = sum(w.request("cpu_seconds")["cpu_s"] for w in workers.values()) - own0
    busy1, wall = machine_busy_seconds(), time.perf_counter() - wall0
    if busy0 is not None and busy1 is not None:
        foreign = max(0.0, (busy1 - busy0) - own) / wall
        entry["foreign_cpus"] = foreign
        if foreign > 0.1:
            echo(f"warning: other processes used {foreign:.2f} CPUs on average during size "
                 f"{size}: times are inflated and noisy")
    echo(f"size {size}: " + "; ".join(
        f"{LABELS[fw]} train {d['train']['median_ms']:.2f} ms, "
        f"forward {d['forward_best']['median_ms']:.2f} ms"
        for fw, d in entry["frameworks"].items()))
    return entry


def _add_gemm_bounds(results):
    rate = results["meta"].get("gemm_rate_used")
    for entry in results["sizes"].values():
        flops = entry["gemm_flops"]
        entry["gemm_bound_ms"] = {k: flops[k] / rate * 1e3 for k in ("train", "forward")}


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# --------------------------------------------------------------------------- reporting
def _fmt_ms(stats):
    return (f"{stats['median_ms']:.3g} ({stats['min_ms']:.3g}–{stats['max_ms']:.3g})"
            if stats else "–")


def format_tables(results):
    """Markdown: the time table (medians, min–max, ratios, GEMM-bound multiples) and the
    memory table."""
    frameworks = results["meta"]["frameworks"]
    others = [fw for fw in frameworks if fw != "mlstm"]
    head = ["size", "step", "mlstm ms (min–max)"]
    for fw in others:
        head += [f"{LABELS[fw]} ms (min–max)", f"mlstm ÷ {LABELS[fw]}"]
    head += ["GEMM bound ms"] + [f"{LABELS[fw]} ÷ bound" for fw in frameworks]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for size, entry in results["sizes"].items():
        fws = entry["frameworks"]
        for kind, key in (("train", "train"), ("forward", "forward_best")):
            base = fws["mlstm"][key]["median_ms"]
            row = [size, kind, _fmt_ms(fws["mlstm"][key])]
            for fw in others:
                stats = fws[fw][key]
                label = _fmt_ms(stats)
                if kind == "forward" and fw == "keras":
                    label += " " + ("call" if stats["variant"] == "forward_compiled_call"
                                    else "pob")
                row += [label, f"{base / stats['median_ms']:.2f}"]
            bound = entry["gemm_bound_ms"][kind]
            row.append(f"{bound:.3g}")
            row += [f"{fws[fw][key]['median_ms'] / bound:.1f}" for fw in frameworks]
            lines.append("| " + " | ".join(row) + " |")
    mem_head = ["size", "must keep MB"] + [f"{LABELS[fw]} RSS growth MB" for fw in frameworks]
    mem_head += ["mlstm traced peak MB", "mlstm peak ÷ must keep", "mlstm kept for reuse MB"]
    mem = ["| " + " | ".join(mem_head) + " |", "|" + "---|" * len(mem_head)]
    for size, entry in results["sizes"].items():
        keep = entry["backward_must_keep_bytes"]
        row = [size, f"{keep / 1e6:.1f}"]
        for fw in frameworks:
            growth = entry["frameworks"][fw]["memory"].get("rss_growth_bytes")
            row.append("–" if growth is None else f"{growth / 1e6:.1f}")
        memory = entry["frameworks"]["mlstm"]["memory"]
        traced = memory.get("traced_peak_bytes")
        row += ["–", "–"] if traced is None else [f"{traced / 1e6:.1f}", f"{traced / keep:.2f}"]
        row.append(f"{memory.get('kept_for_reuse_bytes', 0) / 1e6:.1f}")
        mem.append("| " + " | ".join(row) + " |")
    return "\n".join(lines), "\n".join(mem)


#: Acceptance targets of issues 5 and 13: (what, size, step, against, at most). ``against``
#: is a framework (the ratio of medians mlstm ÷ it), "bound" (the GEMM bound) or "memory"
#: (traced peak ÷ what backward must keep).
TARGETS = (
    [("train", size, "train", fw, limit) for fw, limit in (("keras", 0.67), ("torch", 0.8))
     for size in ("S", "M", "L")]
    + [("forward", "M", "forward_best", "torch", 1.0), ("forward", "M", "forward_best", "keras", 0.8),
       ("forward", "L", "forward_best", "torch", 1.2), ("forward", "L", "forward_best", "keras", 1.0),
       ("train", "L", "train", "bound", 1.6), ("peak memory", "L", "train", "memory", 1.5),
       # issue 13: "mlstm's training step on it should be no slower than Keras'"
       ("train", "BiLSTM-M", "train", "keras", 1.0)])


def target_rows(results):
    """Each target of :data:`TARGETS` this run can judge: ``(label, measured, limit, met)``.

    Targets whose framework or size was not in the run are left out.
    """
    rows = []
    for what, size, key, against, limit in TARGETS:
        entry = results["sizes"].get(size)
        if entry is None:
            continue
        mine = entry["frameworks"]["mlstm"]
        if against == "bound":
            kind = "train" if key == "train" else "forward"
            value, label = mine[key]["median_ms"] / entry["gemm_bound_ms"][kind], "GEMM bound"
        elif against == "memory":
            traced = mine["memory"].get("traced_peak_bytes")
            if traced is None:
                continue
            value, label = traced / entry["backward_must_keep_bytes"], "what backward must keep"
        else:
            if against not in entry["frameworks"]:
                continue
            value = mine[key]["median_ms"] / entry["frameworks"][against][key]["median_ms"]
            label = LABELS[against]
        rows.append((f"{size} {what} ≤ {limit}× {label}", value, limit, value <= limit))
    return rows


def format_targets(results):
    """Markdown table of :func:`target_rows`: measured ratio and whether it is met."""
    rows = target_rows(results)
    lines = ["| target (issues 5, 13) | measured | met? |", "|---|---|---|"]
    lines += [f"| {label} | {value:.2f} | {'yes' if met else 'no'} |"
              for label, value, _, met in rows]
    return "\n".join(lines) if rows else ""


def describe_run(results):
    """One paragraph: versions, threads, GEMM rate, BLAS kernels, load."""
    meta = results["meta"]
    versions = {}
    for info in meta["workers"].values():
        versions.update(info["versions"])
    kernels = sorted({f"{os.path.basename(os.path.dirname(b.get('path') or '?'))} "
                      f"{b.get('corename')} ({b.get('threads')} threads)"
                      for info in meta["workers"].values() for b in info["blas"]})
    rates = ", ".join(f"{k} {v / 1e9:.0f}" for k, v in meta["gemm_rate_flops_per_s"].items())
    foreign = [round(e.get("foreign_cpus", float("nan")), 2) for e in results["sizes"].values()]
    text = (f"{meta['date']}, {meta['machine']['cpu']} ({meta['machine']['cpus']} CPUs), "
            f"float32, {meta['threads']} threads for every framework, "
            f"{meta['rounds']} interleaved rounds after warm-up "
            f"(repetitions per round {meta['reps_per_round']}); "
            + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
            + f". Sustained GEMM rate (GFLOP/s): {rates}; the bound uses "
            f"{meta['gemm_rate_used'] / 1e9:.0f}. OpenBLAS kernel(s): {', '.join(kernels)}")
    mlstm_info = meta["workers"].get("mlstm", {})
    if "mlstm_threads" in mlstm_info:
        text += (f"; mlstm runs independent LSTMs on {mlstm_info['mlstm_threads']} threads"
                 + (" with single-threaded BLAS meanwhile"
                    if mlstm_info.get("mlstm_blas_controllable") else
                    " (BLAS not controllable: one after the other)"))
    torch_build = meta["workers"].get("torch", {}).get("torch_build")
    if torch_build:
        text += "; PyTorch: " + ", ".join(torch_build)
    if meta.get("openblas_env_removed"):
        text += f"; removed for the workers: {sorted(meta['openblas_env_removed'])}"
    text += (f". CPUs used by other processes during each size (of {meta['machine']['cpus']}): "
             f"{foreign}.")
    if meta.get("missing"):
        text += f" Not installed, skipped: {meta['missing']}."
    return text


def plot_chart(results, path):
    """Bars of each step's time as a multiple of its GEMM bound; None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    frameworks = results["meta"]["frameworks"]
    sizes = list(results["sizes"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    width = 0.8 / len(frameworks)
    for ax, (kind, key) in zip(axes, (("training step", "train"), ("forward", "forward_best"))):
        for k, fw in enumerate(frameworks):
            xs, heights, labels = [], [], []
            for j, size in enumerate(sizes):
                entry = results["sizes"][size]
                stats = entry["frameworks"][fw][key]
                bound = entry["gemm_bound_ms"]["train" if key == "train" else "forward"]
                xs.append(j + (k - (len(frameworks) - 1) / 2) * width)
                heights.append(stats["median_ms"] / bound)
                labels.append(f"{stats['median_ms']:.3g}")
            bars = ax.bar(xs, heights, width, label=LABELS[fw])
            ax.bar_label(bars, labels, fontsize=7, rotation=90, padding=2)
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_xticks(range(len(sizes)), sizes)
        ax.set_yscale("log")
        ax.set_title(f"{kind} (labels: median ms)")
        ax.set_xlabel("size")
    axes[0].set_ylabel("time ÷ GEMM bound (dashed: bound)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def update_readme(path, tables, description, start="<!-- bench:start -->",
                  end="<!-- bench:end -->"):
    """Replace the text between the bench markers of ``path`` with the latest tables."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if start not in text or end not in text:
        raise ValueError(f"{path} has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    body = ("\n## Performance\n\n"
            "Latest side-by-side run (`python benchmarks/run.py`; times in ms, median and "
            "min–max; *mlstm ÷ X* below 1 means mlstm is faster; *÷ bound* is the time as a "
            "multiple of the step's unavoidable GEMM work at the machine's sustained GEMM "
            "rate). docs/performance.md says how to read this, what was optimized, where "
            "the time goes and why the targets still missed are out of reach in NumPy.\n\n"
            "Independent LSTMs (the demo's two input branches) run at the same time, one "
            "per thread, with NumPy's OpenBLAS made single-threaded meanwhile: as many "
            "threads as NumPy's BLAS was given (`OPENBLAS_NUM_THREADS`, else the core count). "
            "`mlstm.set_num_threads(1)` runs them one after the other; results are "
            "bit-identical either way (`mlstm/parallel.py`).\n\n"
            f"{tables[0]}\n\nPeak memory of one training step:\n\n{tables[1]}\n\n"
            + (f"Against the targets of issue 5, in this run (medians):\n\n{tables[2]}\n\n"
               if len(tables) > 2 and tables[2] else "")
            + f"{description}\n\nThe machine is a 2-core VM shared with other work: even with "
            "no other process running, medians move by 10-25 % from run to run at M and L "
            "(more at S), so read ratios near 1 as ties.\n")
    with open(path, "w", encoding="utf-8") as f:
        f.write(head + start + body + end + tail)


# --------------------------------------------------------------------------- command line
def cli_main(argv=None):
    """``python benchmarks/run.py [--sizes S,M,L] [--frameworks ...] [--rounds 5] ...``."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description="Time mlstm against Keras (TensorFlow) and PyTorch, side by side.")
    parser.add_argument("--sizes", default=",".join(ALL_SIZES),
                        help=f"comma-separated, from {', '.join(ALL_SIZES)} (CLS-M: the "
                             "classification model, BiLSTM-M: the Bidirectional one; any case)")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", default=None,
                        help="repetitions per round, e.g. S=20,M=6,L=2 (defaults: %s)" % REPS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--settle", type=float, default=0.3,
                        help="seconds of pause before each worker's turn (default 0.3)")
    parser.add_argument("--out", default="bench-results", help="directory for JSON/PNG/table")
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument("--readme", default=None,
                        help="also write the tables between the bench markers of this README")
    parser.add_argument("--keep-openblas-env", action="store_true",
                        help="keep OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE for the workers")
    args = parser.parse_args(argv)
    by_upper = {name.upper(): name for name in ALL_SIZES}
    sizes = [by_upper.get(s.strip().upper(), s.strip()) for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in ALL_SIZES]
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    if unknown or any(f not in FRAMEWORKS for f in frameworks) or "mlstm" not in frameworks:
        parser.error(f"sizes must be among {list(ALL_SIZES)} and frameworks among {FRAMEWORKS} "
                     "(mlstm included)")
    reps = None
    if args.reps:
        reps = {k.strip().upper(): int(v) for k, v in
                (item.split("=") for item in args.reps.split(","))}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "workers.log"), "w") as log:
        results = run_benchmark(sizes, frameworks, args.rounds, args.threads, reps,
                                args.keep_openblas_env, log=log, settle=args.settle)
    tables = format_tables(results) + (format_targets(results),)
    description = describe_run(results)
    json_path = os.path.join(args.out, "bench.json")
    with open(json_path, "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write("\n\n".join(t for t in tables if t) + f"\n\n{description}\n")
    for table in tables:
        if table:
            print()
            print(table)
    print()
    print(description)
    print(f"\nwrote {json_path}")
    if not args.no_chart:
        png = plot_chart(results, os.path.join(args.out, "bench.png"))
        print(f"wrote {png}" if png else "matplotlib not installed: no chart")
    if args.readme:
        update_readme(args.readme, tables, description)
        print(f"updated the bench section of {args.readme}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--worker":
        _threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
        worker_main(sys.argv[2], _threads)
    else:
        sys.exit(cli_main(sys.argv[1:]))
