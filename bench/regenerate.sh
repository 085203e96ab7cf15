#!/usr/bin/env bash
# Every command behind the tables of bench/README.md, in order: the machine limits and the cost model
# first (the floors and the auto columns depend on them). Run from the repository root on an idle host
# (bench/README.md gives each grid's duration). Each results file's header repeats its own command, so
# one table can be redone alone with that line.
set -euo pipefail

# Setup: the bench extras and DeepSparse's own venv (set DS to use another python).
pip install ".[bench]"                                     # sparsert itself, onnxruntime, onnx, matplotlib
bash bench/deepsparse/setup.sh                             # DeepSparse 1.8 venv, ~/.cache/sparsert/deepsparse-venv (a few minutes)
DS=${DS:-~/.cache/sparsert/deepsparse-venv/bin/python}

# Machine limits and cost model first: the floors and the auto columns of every table depend on them.
python bench/machine.py --threads 1,2 --refresh            # bandwidth and peak, ~15 s per thread count; cached for the benches
python -c "from sparsert import cost; [cost.calibrate(t, refresh=True) for t in (1, 2)]"   # the cost model behind the auto columns

# kernels.py: results/kernels.md and kernels.png (default grid), then the narrower results/kernels_*.md.
python bench/kernels.py --threads 1,2 --deepsparse $DS --markdown bench/results/kernels.md --jsonl /tmp/kernels.jsonl --plot bench/results/kernels.png
python bench/kernels.py --densities 0.1,0.05,1.0 --batches 1,8 --threads 1 --deepsparse $DS --markdown bench/results/kernels_b1.md
python bench/kernels.py --densities 0.1 --batches 8,64 --threads 1 --deepsparse $DS --markdown bench/results/kernels_u01.md
python bench/kernels.py --densities 0.1 --batches 1,8,64 --threads 2 --deepsparse $DS --markdown bench/results/kernels_u01_t2.md
python bench/kernels.py --preset midbatch --threads 1 --deepsparse $DS --markdown bench/results/kernels_midbatch.md
python bench/kernels.py --preset blocks --threads 1 --deepsparse $DS --markdown bench/results/kernels_blocks.md
python bench/kernels.py --preset blocks --threads 2 --deepsparse $DS --markdown bench/results/kernels_blocks_t2.md
python bench/kernels.py --densities 2:4,1.0 --batches 1,4,64 --threads 1 --markdown bench/results/kernels_nm.md
python bench/kernels.py --densities 2:4,1.0 --batches 1,4,64 --threads 2 --markdown bench/results/kernels_nm_t2.md
python bench/kernels.py --densities 1.0 --batches 1,4,8,16,64,128 --threads 1 --markdown bench/results/kernels_dense.md
python bench/kernels.py --densities 0.5,0.3 --batches 1,8,64 --threads 1,2 --markdown bench/results/kernels_crossover.md
python bench/plot.py /tmp/kernels.jsonl bench/results/kernels.png      # redraws the figure from a saved run
python bench/kernels.py --threads 1 --markdown bench/results/kernels_avx512_t1.md  # the AVX-512 host's grid

# models.py: the AVX-512 host's two tables (README's Results), results/models.md (every model), then the
# narrower results/models_*.md.
python bench/models.py --models resnet18,mobilenet,bert2 --configs dense,g90,2:4 --batches 1,32 --threads 1 --deepsparse $DS --markdown bench/results/models_avx512_t1.md
python bench/models.py --models resnet18,mobilenet,bert2 --configs dense,g90,2:4 --batches 1,32 --threads 2 --deepsparse $DS --markdown bench/results/models_avx512_t2.md
python bench/models.py --configs dense,g90,2:4 --batches 1,32 --threads 1,2 --deepsparse $DS --markdown bench/results/models.md
python bench/models.py --models mlp,bert2,resnet18 --configs g90,2:4 --batches 1 --threads 1 --deepsparse $DS --markdown bench/results/models_b1.md
python bench/models.py --models mlp,bert2,resnet18 --configs g90 --batches 1,32 --threads 1 --deepsparse $DS --markdown bench/results/models_g90_t1.md
python bench/models.py --models mlp,bert2,resnet18 --configs g90 --batches 1,32 --threads 2 --deepsparse $DS --markdown bench/results/models_g90_t2.md
python bench/models.py --models resnet18 --configs g90 --batches 1 --threads 1,2 --deepsparse $DS --markdown bench/results/models_resnet18_b1.md
python bench/models.py --models bert2,resnet18,mobilenet --configs g90 --batches 32 --threads 1,2 --deepsparse $DS --markdown bench/results/models_b32.md
python bench/models.py --models bert2,resnet18 --configs g90 --batches 32 --threads 1 --deepsparse $DS --markdown bench/results/models_b32_t1.md
python bench/models.py --models bert2 --configs dense,g90,2:4 --batches 1,32 --threads 1 --deepsparse $DS --markdown bench/results/models_bert2_zen4_t1.md
python bench/models.py --models mobilenet --configs dense,g90,2:4 --batches 1,32 --threads 1 --markdown bench/results/models_mobilenet_zen4_t1.md

# vision.py: torchvision classifiers, dense, against onnxruntime and torch eager (~3 min).
python bench/vision.py --markdown bench/results/vision_zen4_t1.md

# edge.py: results/edge.md and bench/README.md's edge table; prune.py: results/prune_digits.svg;
# coverage.py: README.md's "Supported models".
python bench/edge.py --readme                              # sparsert-bench on resnet18, mobilenet, bert2 (~5 min); results/edge.md
python bench/prune.py --svg bench/results/prune_digits.svg  # the digits grid and both plans (~4 min); --markdown PATH writes the report
python bench/coverage.py --readme                          # which real models load and match (README's Supported models), ~2-4 min
