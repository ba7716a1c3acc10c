#!/usr/bin/env bash
# The learning-rate study of docs/images.md ("The learning rate"): Cityscapes photo ->
# label map, 25 pairs, 64x64, the recipe's flag file (which sets --lr=1e-3), 1 000 updates:
# CE alone (seeds 2, 1337), GAN + CE and FactorGAN + CE (seeds 2, 1337, 3). "CE alone" is the conditional GAN
# with --recon_weight=1000000: Adam's steps do not depend on the loss's scale, so the GAN
# loss's share of the generator's step is 1e-6. DIAGNOSTICS=1 adds the one-seed rows
# (the old rate 1e-4, jitter, a larger CE weight, 3e-4).
# Runs resume where they stopped; two go side by side, one CPU core each. Then:
#
#   nohup results/cityscapes_segmentation/learning_rate/run.sh > lr.log 2>&1 &
#   .venv/bin/python -m tools.image2image_results --runs=runs/cityscapes_lr/image2image \
#       --results_dir=results/cityscapes_segmentation/learning_rate --at_step=1000
set -u
cd "$(dirname "$0")/../../.."
OUT=${OUT:-runs/cityscapes_lr}
DATA=${DATA:-../shared/data/cityscapes_pix2pix_subset}
COMMON="--flagfile=trainers/flagfiles/segmentation.cfg --dataset=cityscapes --dataset_dir=$DATA
  --load_size=64 --num_joint_samples=25 --eval_every=250 --eval_samples=10 --out_path=$OUT
  --intra_op_threads=1 --inter_op_threads=1 --allow_changed=steps"

run() {  # run NAME FLAGS...: one training run, its terminal output in $OUT/NAME.log
  local name=$1; shift
  mkdir -p "$OUT"
  .venv/bin/python -m trainers.image2image $COMMON --experiment_name="$name" "$@" \
    > "$OUT/$name.log" 2>&1 || echo "run $name failed: see $OUT/$name.log"
}

{
  run ce_alone_seed2 --variant=gan --recon_weight=1000000 --seed=2 --steps=1000
  run ce_alone_seed1337 --variant=gan --recon_weight=1000000 --seed=1337 --steps=1000
  run gan_ce_seed2 --variant=gan --seed=2 --steps=1000
  run gan_ce_seed1337 --variant=gan --seed=1337 --steps=1000
  run gan_ce_seed3 --variant=gan --seed=3 --steps=1000
} &
{
  run factorgan_ce_seed2 --variant=factorgan --seed=2 --steps=1000
  run factorgan_ce_seed1337 --variant=factorgan --seed=1337 --steps=1000
  run factorgan_ce_seed3 --variant=factorgan --seed=3 --steps=1000
} &
wait
if [ "${DIAGNOSTICS:-0}" = 1 ]; then  # one seed each: what moved FactorGAN + CE, and the old rate
  {
    run ce_alone_lr1e-4_seed2 --variant=gan --recon_weight=1000000 --seed=2 --steps=1000 --lr=1e-4
    run ce_alone_jitter_lr1e-4_seed2 --variant=gan --recon_weight=1000000 --seed=2 --steps=750 \
      --lr=1e-4 --jitter=0.125
    run factorgan_no_cp_ce_lr1e-4_seed2 --variant=factorgan_no_cp --seed=2 --steps=1500 --lr=1e-4
  } &
  {
    run factorgan_ce_jitter_seed2 --variant=factorgan --seed=2 --steps=750 --jitter=0.125
    run factorgan_ce_x1000_seed2 --variant=factorgan --seed=2 --steps=750 --recon_weight=1000
    run factorgan_ce_lr3e-4_seed2 --variant=factorgan --seed=2 --steps=750 --lr=3e-4
  } &
  wait
fi
echo "learning-rate study done"
