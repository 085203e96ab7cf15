"""Where one model's time goes in sparsert: the median of `Model.run` and `Model.profile`'s time per
operator kind, for a model of model_zoo.py. To compare two builds, run it against each in turn
(e.g. PYTHONPATH pointing at each build's package), alternating.

    python bench/profile_model.py resnet18 --config g90 --batch 1 --threads 1
    python bench/profile_model.py resnet18 --threads 2 --interleave-eager   # the spinning-workers check
    python bench/profile_model.py bert2 --batch 32 --calls 5 --against-whole  # slices against the whole batch

--interleave-eager also times `Model.run` alternating call by call with torch eager at the same
thread count: torch's idle OpenMP worker keeps spinning after each call, which is why models.py and
kernels.py time sparsert in a block of its own at 2+ threads. --micro-batch N loads with
`micro_batch=N` (the executor's slices of a large batch; N = the batch runs it whole), and
--against-whole also times, alternating call by call in the same process, a copy loaded to run the
batch whole.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time

import torch

import sparsert
from model_zoo import CONFIGS, MODELS, build, make_input


def median_ms(fn, calls: int) -> float:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("--config", default="g90", choices=CONFIGS)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calls", type=int, default=20, help="timed calls of Model.run (default 20)")
    parser.add_argument("--interleave-eager", action="store_true", help="also time run() alternating with torch eager")
    parser.add_argument("--formats", default="auto", help="load(formats=): auto, or one format for every layer")
    parser.add_argument("--micro-batch", type=int, default=0, help="load(micro_batch=); 0: the executor's choice")
    parser.add_argument("--against-whole", action="store_true",
                        help="also time run() alternating with a copy that runs the batch whole")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    sparsert.set_num_threads(args.threads)
    model = build(args.model, args.config)
    x = make_input(args.model, args.batch)
    compiled = sparsert.load(model, example_inputs=(x,), formats=args.formats, micro_batch=args.micro_batch)
    compiled.run(x)
    whole = sparsert.load(model, example_inputs=(x,), micro_batch=args.batch) if args.against_whole else None
    time.sleep(1)  # torch's workers, busy while the model was built, go idle

    def run():
        compiled.run(x)

    print(f"{args.model} {args.config} batch {args.batch} (slices of {compiled.micro_batch(args.batch)}), "
          f"{args.threads} thread(s): run {median_ms(run, args.calls):.3f} ms (median of {args.calls})")
    by_op = collections.defaultdict(float)
    count = collections.Counter()
    for p in compiled.profile(x, repeats=args.calls):
        by_op[p["op"]] += p["seconds"]
        count[p["op"]] += 1
    total = sum(by_op.values())
    for op, seconds in sorted(by_op.items(), key=lambda kv: -kv[1]):
        print(f"  {op:<22} n={count[op]:<3} {seconds * 1e3:9.3f} ms {100 * seconds / total:5.1f}%")
    if args.interleave_eager:
        def eager():
            with torch.no_grad():
                model(x)

        sr, te = [], []
        for _ in range(args.calls):
            te.append(median_ms(eager, 1))
            sr.append(median_ms(run, 1))
        print(f"alternating with torch eager: run {statistics.median(sr):.3f} ms, eager {statistics.median(te):.3f} ms")
    if whole is not None:
        whole.run(x)
        sliced, whole_ms = [], []
        for _ in range(args.calls):
            whole_ms.append(median_ms(lambda: whole.run(x), 1))
            sliced.append(median_ms(run, 1))
        print(f"alternating with the whole batch: run {statistics.median(sliced):.3f} ms, "
              f"whole {statistics.median(whole_ms):.3f} ms")


if __name__ == "__main__":
    main()
