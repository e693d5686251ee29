"""Ctrl-C during training never leaves a half-applied optimizer step.

50 real SIGINTs at random moments of ``fit`` with Adam (a timer's SIGALRM handler sends
SIGINT to the process, so the interrupt lands wherever Python next checks for signals:
in the forward pass, the backward pass, the optimizer's computation, its commit, a
callback). After each, the model must equal, bit for bit, an uninterrupted run after the
same number of *completed* steps, which ``optimizer.iterations`` tells: weights, Adam's
moments and the step count. An optimizer that updated some parameters and not others, or
counted a step it did not finish, fails.

The trials run in a subprocess, so that a stray interrupt can never reach pytest. A trial
whose run ends before its timer fires (the machine was faster than when the delays were
chosen) is run again with half the delay, so that all 50 interrupt training part-way. The model
is small and the batch tiny so that the optimizer's step is a large part of each training
step (about a fifth here) and many interrupts land inside it.
"""
import json
import subprocess
import sys

CHILD = r"""
import json, os, random, signal, sys, time
import mlstm
import mlstm.optimizers._interrupts as interrupts
from mlstm.demo import build_demo_model
from mlstm.data import make_demo_data
from mlstm.optimizers import Adam

trials, seed = int(sys.argv[1]), int(sys.argv[2])
d = make_demo_data(n_samples=16, timesteps=2, features=(8, 8), seed=0)
x, y = [d["x1"], d["x2"]], [d["y1"], d["y2"]]
model = build_demo_model(timesteps=2, features=(8, 8), units=64, seed=0)
initial = model.get_weights()
FIT = dict(epochs=3, batch_size=2, verbose=0, seed=5)          # 24 steps


def fresh():
    model.set_weights(initial)
    model.compile(optimizer=Adam(1e-2), loss=["mse", "binary_crossentropy"],
                  loss_weights=[0.7, 0.3])


def snapshot():
    state = {k: v.tobytes() if hasattr(v, "tobytes") else v
             for k, v in model.optimizer.get_state().items()}
    return [w.tobytes() for w in model.get_weights()], state


class Record(mlstm.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        reference.append(snapshot())


fresh()
reference = [snapshot()]
model.fit(x, y, callbacks=[Record()], **FIT)
durations = []
for _ in range(3):                     # the fastest of three: delays below it interrupt
    fresh()
    start = time.perf_counter()
    model.fit(x, y, **FIT)
    durations.append(time.perf_counter() - start)
duration = min(durations)

deferred = []
deliver = interrupts._deliver
interrupts._deliver = lambda *a: (deferred.append(1), deliver(*a))
signal.signal(signal.SIGALRM, lambda signum, frame: os.kill(os.getpid(), signal.SIGINT))


def settle():
    # Each call is a point where Python runs pending signal handlers: a SIGALRM that
    # arrived just before the timer was cancelled raises its KeyboardInterrupt here.
    for _ in range(3):
        time.sleep(0)


rng = random.Random(seed)
results = []
for trial in range(trials):
    delay = rng.uniform(0.0002, 0.9 * duration)
    for attempt in range(6):        # a run faster than the delay: again, with half of it
        fresh()
        interrupted = False
        try:
            try:
                signal.setitimer(signal.ITIMER_REAL, delay)
                model.fit(x, y, **FIT)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                settle()
        except KeyboardInterrupt:
            interrupted = True
        k = model.optimizer.iterations
        results.append(dict(delay=delay, interrupted=interrupted, completed=k,
                            equal=snapshot() == reference[k]))
        if interrupted:
            break
        delay /= 2
print(json.dumps(dict(results=results, steps=len(reference) - 1, deferred=len(deferred),
                      duration=duration)))
"""


def test_50_interrupts_leave_the_model_after_a_whole_number_of_steps():
    done = subprocess.run([sys.executable, "-c", CHILD, "50", "20240"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    results = report["results"]
    assert report["steps"] == 24
    bad = [r for r in results if not r["equal"]]
    assert not bad, f"models that match no whole number of steps: {bad}"
    interrupted = [r for r in results if r["interrupted"]]
    # 50 interrupts really stopped training part-way (a run that finished before its timer
    # was tried again with half the delay), at many different steps.
    assert len(interrupted) == 50, results
    assert all(r["completed"] < report["steps"] for r in interrupted)
    assert len({r["completed"] for r in interrupted}) >= 8, results
