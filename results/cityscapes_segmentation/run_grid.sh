#!/usr/bin/env bash
# The Cityscapes results of docs/images.md "Pairs losses": 25 paired scenes, 64x64,
# 1 000 updates for every row, on the 1 400 + 100 real scenes of
# ../shared/data/cityscapes_pix2pix_subset. Every run resumes where it stopped, so the
# script can be run again after an interruption; two runs go side by side (one CPU
# core each). Then the tables:
#
#   nohup results/cityscapes_segmentation/run_grid.sh > grid.log 2>&1 &
#   .venv/bin/python -m tools.image2image_results --runs=runs/cityscapes_grid/image2image \
#       --results_dir=results/cityscapes_segmentation --at_step=1000
#
# OUT (default runs/cityscapes_grid) holds the run folders; STEPS (default 1000): a
# larger STEPS later continues every finished row from its last checkpoint.
# PHOTOS=1 adds the label map -> photo rows (each trains the realism instrument once,
# 3 000 updates, shared by the rows).
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/cityscapes_grid}
STEPS=${STEPS:-1000}
DATA=${DATA:-../shared/data/cityscapes_pix2pix_subset}
COMMON="--dataset=cityscapes --dataset_dir=$DATA --load_size=64 --num_joint_samples=25 --mirror
  --noise_stages=3 --steps=$STEPS --eval_every=250 --eval_samples=10 --seed=1337 --out_path=$OUT
  --intra_op_threads=1 --predictor_steps=600 --allow_changed=steps"
SEGMENT="--label_encoding=one_hot --discrete_fakes"
PHOTO="--direction=b_to_a --label_encoding=one_hot --variant=gan"

run() {  # run NAME FLAGS...: one training run, its terminal output in $OUT/NAME.log
  local name=$1; shift
  mkdir -p "$OUT"
  .venv/bin/python -m trainers.image2image $COMMON --experiment_name="$name" "$@" \
    > "$OUT/$name.log" 2>&1 || echo "run $name failed: see $OUT/$name.log"
}

runs() {  # runs VARIANT: the variant without a pairs loss, with cross-entropy, with proxy MR2
  run "$1" $SEGMENT --variant="$1"
  run "$1_ce" $SEGMENT --variant="$1" --recon_loss=ce
  run "$1_proxy_mr2" $SEGMENT --variant="$1" --recon_loss=proxy_mr2
}

.venv/bin/python -m trainers.segmentation_floors --dataset_dir="$DATA" --load_size=64 \
  --num_joint_samples=25 --out=results/cityscapes_segmentation/floors_64.json
{ runs gan; run pix2pix_rgb --label_encoding=rgb --variant=gan --recon_loss=l1; } &
runs factorgan &
wait
if [ "${PHOTOS:-0}" = 1 ]; then
  run photos_pix2pix $PHOTO --recon_loss=l1 &
  run photos_mr2 $PHOTO --recon_loss=mr2 &
  wait
fi
echo "grid done"
