#!/usr/bin/env bash
# The Cityscapes results of docs/images.md "Pairs losses": 25 paired scenes, 64x64, the same
# number of updates for every row, on the 1 400 + 100 real scenes of
# ../shared/data/cityscapes_pix2pix_subset. Every run resumes where it stopped, so the
# script can be run again after an interruption; two runs go side by side (one CPU
# core each). Then `python -m tools.image2image_results` writes the tables.
#
#   nohup results/cityscapes_segmentation/run_grid.sh > grid.log 2>&1 &
#
# OUT (default runs/cityscapes_grid) holds the run folders; STEPS (default 2000).
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/cityscapes_grid}
STEPS=${STEPS:-2000}
DATA=${DATA:-../shared/data/cityscapes_pix2pix_subset}
COMMON="--dataset=cityscapes --dataset_dir=$DATA --load_size=64 --num_joint_samples=25 --mirror
  --noise_stages=3 --steps=$STEPS --eval_every=250 --eval_samples=10 --seed=1337 --out_path=$OUT
  --intra_op_threads=1"
ONE_HOT="--label_encoding=one_hot --discrete_fakes"

run() {  # run NAME FLAGS...: one training run, its terminal output in $OUT/NAME.log
  local name=$1; shift
  mkdir -p "$OUT"
  .venv/bin/python -m trainers.image2image $COMMON --experiment_name="$name" "$@" \
    > "$OUT/$name.log" 2>&1 || echo "run $name failed: see $OUT/$name.log"
}

lane_1() {
  run gan $ONE_HOT --variant=gan
  run gan_ce $ONE_HOT --variant=gan --recon_loss=ce
  run gan_proxy_mr2 $ONE_HOT --variant=gan --recon_loss=proxy_mr2
  run pix2pix_rgb --label_encoding=rgb --variant=gan --recon_loss=l1
  run photos_pix2pix --direction=b_to_a --label_encoding=one_hot --variant=gan --recon_loss=l1
  run photos_mr2 --direction=b_to_a --label_encoding=one_hot --variant=gan --recon_loss=mr2
}

lane_2() {
  run factorgan $ONE_HOT --variant=factorgan
  run factorgan_ce $ONE_HOT --variant=factorgan --recon_loss=ce
  run factorgan_proxy_mr2 $ONE_HOT --variant=factorgan --recon_loss=proxy_mr2
  run factorgan_l1_rgb --label_encoding=rgb --variant=factorgan --recon_loss=l1
  run photos_proxy_mr2 --direction=b_to_a --label_encoding=one_hot --variant=gan --recon_loss=proxy_mr2
}

.venv/bin/python -m trainers.segmentation_floors --dataset_dir="$DATA" --load_size=64 \
  --num_joint_samples=25 --out=results/cityscapes_segmentation/floors_64.json
lane_1 &
lane_2 &
wait
echo "grid done"
