#!/usr/bin/env bash
# Regenerate every number in BENCHMARKS.md, in the order the document gives them. Each line can
# also be run alone. On the 2-core VM this takes several hours, most of it the real-training
# sample-efficiency benchmark (resumable: rerun to continue). Run on an otherwise idle machine:
# contention changes timings by 5-10x (not the accuracy results, which are seeded).
set -euo pipefail
cd "$(dirname "$0")/.."

# issue 30: the equal-compute comparison, 6 methods x 3 seeds, each 15 full trainings' worth of
# images (10 epochs x 10,000 images) on FBNetV3's space under 2 MFLOPs; ~3 h on 2 cores,
# resumable (finished searches in results/equal_compute/, running ones in state/equal_compute/)
python benchmarks/bench_equal_compute.py --epochs 10 --train-images 10000 --full-trainings 15 \
    --seeds 3 --jobs 2
# issue 30: when do recipes matter? 5 architectures x 6 recipes x 1-20 epochs x 2 seeds on
# Fashion-MNIST (20,000 training / 10,000 held-out images); ~3 h on 2 cores, resumable
python benchmarks/bench_budget_study.py --train-images 20000 --seeds 2 --jobs 2
# issue 29: sampler suites, real trainings, parallel workers, time per proposal (each resumable
# from benchmarks/results/sampler_suites/, *_jobs/ and parallel_workers/)
python benchmarks/bench_sampler_suites.py --problems bbob-mixint --mixint-dims 5 --seeds 10 \
    --samplers TPE,GP,Auto,coarse-gp,coarse-xgb,coarse-mix
python benchmarks/bench_sampler_suites.py --problems bbob-mixint --mixint-dims 10 \
    --mixint-functions 1,10,15,21 --seeds 5 --samplers TPE,GP,Auto,coarse-gp,coarse-xgb,coarse-mix
python benchmarks/bench_sampler_suites.py --problems bbob-constrained,sklearn \
    --constrained-functions 2,8,20,33,50 --seeds 5 --samplers TPE,GP,Auto,coarse-gp,coarse-xgb
python benchmarks/bench_sampler_suites.py --problems nas-table --seeds 10 \
    --samplers Random,QMC,TPE,GP,Auto,NSGA-II,coarse-xgb,coarse-gp,coarse-mix
python benchmarks/bench_sampler_suites.py --report --constrained-functions 2,8,20,33,50 \
    --samplers TPE,GP,Auto,NSGA-II,QMC,Random,coarse-gp,coarse-xgb,coarse-mix,coarse-gp-onehot
python benchmarks/bench_sample_efficiency.py --methods tpe,gp,coarse,coarse-xgboost \
    --stem bench_sample_efficiency_v3 --workers 2
problems=bbob-mixint_f010_d05,bbob-mixint_f021_d05,bbob-constrained_f020_d05,nas-table_fbnetv3-1mflops
python benchmarks/bench_parallel_workers.py --problems "$problems" \
    --samplers coarse,coarse-mean,coarse-worst,GP,TPE --workers 1,4,8 --seeds 10 --jobs 2
python benchmarks/bench_parallel_workers.py --problems bbob-mixint_f010_d05,bbob-mixint_f021_d05 \
    --samplers coarse,coarse-mean,coarse-worst,GP,TPE --seeds 20 --jobs 2
python benchmarks/bench_parallel_workers.py --report --problems "$problems" \
    --samplers coarse,coarse-mean,coarse-worst,GP,TPE --seeds 20
python benchmarks/bench_sampler_overhead.py --sizes 100,500,1000 --asks 50 \
    --samplers tpe,auto,coarse-gp,coarse-gp+py,coarse-xgboost,coarse-xgboost+py

python benchmarks/bench_cost.py --seed 0 --n-small 50 --n-imagenet 20
python benchmarks/bench_trainer.py --seed 0
# issue 28: the data path (streaming vs a plain DataLoader, augmentation cost, peak memory of a
# fbnetv3-imagenet run on 20,000 generated 256 px JPEGs in benchmarks/state/)
python benchmarks/bench_data.py --seed 0 --repeats 3
# on a machine with a CUDA GPU only (exits 2 without one): bash benchmarks/gpu_check.sh
python benchmarks/bench_trainer.py --seed 0 --train-images 4000 --threads default \
    --kinds ours,reference --mallocs default --stem bench_trainer_full
python benchmarks/bench_predictors.py
python benchmarks/bench_fine_search.py --seed 0
python benchmarks/bench_samplers_sklearn.py --seeds 5 --trials 20
python benchmarks/bench_samplers_sklearn.py --seeds 5 --trials 40 \
    --samplers "Random,Random (feasible only),CoarseSampler,AdaptiveGeneticSampler" \
    --stem bench_samplers_sklearn_40
python benchmarks/bench_sample_efficiency.py
python benchmarks/bench_samplers_synthetic.py
python benchmarks/bench_beats_random.py --seeds 10
python benchmarks/bench_storage.py
python benchmarks/bench_faults.py
# issue 14: design spaces (the EDF is ~50 min, the scaling ~36 min, on 2 cores). Their Optuna
# storages and run artifacts (weights, checkpoints) go to benchmarks/state/ (not tracked), so a
# rerun resumes; the reports go to benchmarks/results/.
state=benchmarks/state
mkdir -p "$state"
jointnas edf --space anynetx-a,anynetx-b,anynetx-c,anynetx-d,anynetx-e,regnet --n 100 \
    --epochs 2 --dataset fashion-mnist:5000 --mflops-band 1,3 --storage "$state/edf.log" \
    --seed 0 --out benchmarks/results/edf --threads 2 --no-progress
jointnas scale --base benchmarks/data/efficientnet_base.json --phi 1,2,3 \
    --dataset fashion-mnist:5000 --storage "$state/scale.log" --seed 0 \
    --out benchmarks/results/scale
python benchmarks/bench_recipe_transfer.py
for space in regnet fbnetv3-small; do
    jointnas run --space "$space" --dataset fashion-mnist:5000 --max-mflops 2 --trials 20 \
        --storage "$state/runs.log" --study "$space" --out "$state/run-$space" --seed 0 \
        | tee "benchmarks/results/run-$space/run-$space.stdout"
    cp "$state/run-$space/best.json" "$state/run-$space/final.csv" "benchmarks/results/run-$space/"
done
# issue 15: one-shot supernet (SPOS / GreedyNAS / DetNAS) vs stand-alone training, ~90 min on 2
# cores; supernets, cache and Optuna journal under benchmarks/state/supernet/ (a rerun resumes).
python benchmarks/bench_supernet.py
