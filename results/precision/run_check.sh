#!/usr/bin/env bash
# The quality check behind --precision=auto (docs/benchmarks_and_tests.md, "Precision"):
# the same runs in float32 and in bfloat16, same seeds and budget, two at a time (one
# CPU core each, so both precisions share the machine alike). Every run resumes where it
# stopped, so the script can be run again after an interruption. Then the table:
#
#   nohup results/precision/run_check.sh > precision.log 2>&1 &
#   .venv/bin/python -m tools.precision_results --runs=runs/precision_check \
#       --out=results/precision
#
# OUT (default runs/precision_check) holds the run folders. PARTS (default "cityscapes
# mnist") chooses the parts; SEEDS (default "1 2 3") the Paired MNIST seeds.
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/precision_check}
PARTS=${PARTS:-cityscapes mnist}
SEEDS=${SEEDS:-1 2 3}
CITYSCAPES=${CITYSCAPES:-../shared/data/cityscapes_pix2pix_subset}
MNIST=${MNIST:-../shared/data/mnist}
mkdir -p "$OUT"

run() {  # run TRAINER NAME FLAGS...: one run, its terminal output in $OUT/<trainer>_NAME.log
  local trainer=$1 name=$2; shift 2
  .venv/bin/python -m "trainers.$trainer" --out_path="$OUT" --experiment_name="$name" \
    --intra_op_threads=1 --inter_op_threads=1 "$@" > "$OUT/${trainer}_$name.log" 2>&1 \
    || echo "run $trainer $name failed: see $OUT/${trainer}_$name.log"
}

for part in $PARTS; do
  case $part in
    cityscapes)  # the segmentation recipe, 25 pairs, 64x64, 1 000 updates (as the grid)
      for precision in float32 bfloat16; do
        run image2image "segmentation_$precision" --flagfile=trainers/flagfiles/segmentation.cfg \
          --dataset=cityscapes --dataset_dir="$CITYSCAPES" --load_size=64 --num_joint_samples=25 \
          --steps=1000 --eval_every=250 --eval_samples=10 --seed=1337 --precision=$precision \
          --variant=factorgan --lr=1e-4 &  # the recipe when these runs were made
      done
      wait ;;
    mnist)  # FactorGAN and GAN, 100 pairs, 20 000 updates (the trainer's defaults), SEEDS
      # The evaluation classifiers first, alone: the runs then share the cached ones.
      run paired_mnist classifiers --mnist_manual_dir="$MNIST" --steps=0 \
        --classifier_cache_dir="$OUT/mnist_classifier"
      for seed in $SEEDS; do
        for variant in factorgan gan; do
          for precision in float32 bfloat16; do
            run paired_mnist "${variant}_${precision}_seed$seed" --variant=$variant \
              --mnist_manual_dir="$MNIST" --classifier_cache_dir="$OUT/mnist_classifier" \
              --seed=$seed --precision=$precision &
          done
          wait
        done
      done ;;
    *) echo "PARTS: unknown part $part (expected cityscapes, mnist)"; exit 2 ;;
  esac
done
echo "precision check done"
