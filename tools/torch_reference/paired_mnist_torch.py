"""The original FactorGAN code's Paired MNIST training, re-written in PyTorch as a reference.

Not part of the library and not run by the tests: it answers "does the original
algorithm, run here and scored on our instrument, reach the paper's figures?", so that
our gaps can be told apart from the paper's single-seed luck. It is our own
re-implementation of what f90/FactorGAN's `PairedMNIST.py` does (read there:
`training/AdversarialTraining.py`, `training/DiscriminatorTraining.py`,
`models/SpectralNorm.py`, `datasets/DoubleMNISTDataset.py`), kept to its behaviour:

* data: the official files in their order (torchvision's); the paired set is the
  first `num_joint_samples` training digits, each upper digit given a newly drawn
  lower digit from the same subset at every pass (the original's DataLoader worker,
  which caches the choice, is a new process every epoch); the marginal streams are
  all 60 000 digits, shuffled every epoch, the lower one's digits drawn the same way;
* networks: 50 -> 128 -> 128 -> 1568 ReLU/sigmoid generator, 128-128 LeakyReLU(0.01)
  discriminators, PyTorch's default initialisation everywhere;
* spectral norm re-parametrised, one power iteration in *every* forward call, the
  generator update's and the real and fake halves' included;
* Adam 1e-4, betas (0.5, 0.999), eps 1e-8 for every network; batch 25; 2
  discriminator rounds per generator update; every discriminator call draws its own
  fresh fake batch; the discriminator loss is BCE(real) + BCE(fake) from two forward
  passes; the generator is non-saturating on sum D_i + D_P - D_Q.

Needs PyTorch and NumPy only (`pip install torch==2.13.0 numpy` in an environment of
its own). Writes `<out>/samples_<step>.npy`, float32 [10000, 1568] in [0, 1], at the
last step and at every step of `--sample_at`; the project's trainer scores them on
the same classifiers and test pairs as its own runs:

    python tools/torch_reference/paired_mnist_torch.py --mnist_dir=../shared/data/mnist \
        --variant=factorgan_no_cp --same_digit_prob=0.9 --steps=200000 --out=/tmp/ref
    .venv/bin/python -m trainers.paired_mnist --mnist_manual_dir=../shared/data/mnist \
        --same_digit_prob=0.9 --score_samples=/tmp/ref/samples_200000.npy
"""

import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

VARIANTS = ("gan", "factorgan", "factorgan_no_cp")
DIGIT = 784


def read_idx(path: str) -> np.ndarray:
    """An official MNIST idx .gz file as a uint8 array (images [N, 28, 28] or labels [N])."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


class Pairs:
    """Upper digits in a shuffled order every pass, each with a newly drawn lower digit:
    the lower label is the upper's with probability lam, else drawn from the subset's
    label frequencies; the image is uniform among that label's images of the subset."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, lam: float, batch: int,
                 rng: np.random.Generator):
        self.images = torch.from_numpy(images.reshape(-1, DIGIT).astype(np.float32) / 255.0)
        self.labels = labels.astype(np.int64)
        self.by_label = [np.flatnonzero(self.labels == d) for d in range(10)]
        counts = np.array([len(i) for i in self.by_label], np.float64)
        self.label_probs = counts / counts.sum()
        self.lam, self.batch, self.rng = lam, batch, rng
        self.order, self.position = np.empty(0, np.int64), 0

    def _lower(self, upper: np.ndarray) -> np.ndarray:
        keep = self.rng.random(len(upper)) < self.lam
        drawn = self.rng.choice(10, size=len(upper), p=self.label_probs)
        lower_labels = np.where(keep, self.labels[upper], drawn)
        return np.array([self.by_label[d][self.rng.integers(len(self.by_label[d]))]
                         for d in lower_labels])

    def next(self) -> torch.Tensor:
        """float32 [B, 1568]; the last batch of a pass may be smaller (drop_last=False)."""
        if self.position >= len(self.order):
            self.order, self.position = self.rng.permutation(len(self.labels)), 0
        upper = self.order[self.position: self.position + self.batch]
        self.position += len(upper)
        return torch.cat([self.images[upper], self.images[self._lower(upper)]], 1)


def l2_unit(x: torch.Tensor) -> torch.Tensor:
    return x / (x.norm() + 1e-12)


class SpectralLinear(nn.Module):
    """nn.Linear whose forward uses W / sigma(W); u advances one power iteration per
    call, without gradient; the gradient flows through sigma = u . W v."""

    def __init__(self, fan_in: int, units: int):
        super().__init__()
        self.linear = nn.Linear(fan_in, units)  # PyTorch's default initialisation
        self.register_buffer("u", l2_unit(torch.randn(units)))

    def forward(self, x):
        w = self.linear.weight  # [units, fan_in]
        with torch.no_grad():
            v = l2_unit(w.t() @ self.u)
            u = l2_unit(w @ v)
        # A new tensor, not an in-place update: a graph still to be differentiated may
        # hold the previous u.
        self.u = u
        sigma = u @ (w @ v)
        # x (W / sigma)^T + b, with the division on the [B, units] product rather than
        # on the weight: the same function and gradient at a fraction of the cost.
        return F.linear(x, w) / sigma + self.linear.bias


class Discriminator(nn.Module):
    def __init__(self, fan_in: int):
        super().__init__()
        self.fc1 = SpectralLinear(fan_in, 128)
        self.fc2 = SpectralLinear(128, 128)
        self.fc3 = SpectralLinear(128, 1)

    def forward(self, x):
        x = F.leaky_relu(self.fc1(x), 0.01)
        x = F.leaky_relu(self.fc2(x), 0.01)
        return self.fc3(x)[:, 0]


def generator(nz: int) -> nn.Module:
    return nn.Sequential(nn.Linear(nz, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                         nn.Linear(128, 2 * DIGIT), nn.Sigmoid())


def shuffle_lower(batch: torch.Tensor) -> torch.Tensor:
    """The batch with its lower digits permuted along the batch axis (upper kept)."""
    perm = torch.randperm(batch.shape[0])
    return torch.cat([batch[:, :DIGIT], batch[perm, DIGIT:]], 1)


def bce_step(disc: nn.Module, optim, real: torch.Tensor, fake: torch.Tensor) -> None:
    """One discriminator update: BCE(real, 1) + BCE(fake, 0), as the original: a forward
    call on the real half, then one on the fake half, each with its own power
    iteration, their gradients summed."""
    optim.zero_grad()
    for batch, target in ((real, 1.0), (fake, 0.0)):
        logits = disc(batch)
        F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target)).backward()
    optim.step()


def adam(params, lr: float):
    return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999), eps=1e-8, fused=True)


def train(args) -> dict:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    images = read_idx(os.path.join(args.mnist_dir, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(args.mnist_dir, "train-labels-idx1-ubyte.gz"))
    n = args.num_joint_samples
    joint = Pairs(images[:n], labels[:n], args.same_digit_prob, args.batch_size, rng)
    full = [Pairs(images, labels, args.same_digit_prob, args.batch_size, rng) for _ in range(2)]

    gen = generator(args.nz)
    gen_optim = adam(gen.parameters(), args.lr)
    noise = lambda: torch.rand(args.batch_size, args.nz) * 2 - 1

    def fake_batch():
        with torch.no_grad():
            return gen(noise())

    if args.variant == "gan":
        disc = Discriminator(2 * DIGIT)
        disc_optim = adam(disc.parameters(), args.lr)
        discs = [disc]
        combined_logit = disc
    else:
        marginal = [Discriminator(DIGIT) for _ in range(2)]
        dep_q = Discriminator(2 * DIGIT)
        dep_p = Discriminator(2 * DIGIT) if args.variant == "factorgan" else None
        discs = marginal + [dep_q] + ([dep_p] if dep_p is not None else [])
        optims = {id(d): adam(d.parameters(), args.lr) for d in discs}

        def combined_logit(x):
            logit = marginal[0](x[:, :DIGIT]) + marginal[1](x[:, DIGIT:]) - dep_q(x)
            return logit + dep_p(x) if dep_p is not None else logit

    start, gen_loss_sum = time.time(), 0.0
    for step in range(1, args.steps + 1):
        for _ in range(args.disc_iter):
            if args.variant == "gan":
                bce_step(disc, disc_optim, joint.next(), fake_batch())
                continue
            for part, d in enumerate(marginal):
                crop = slice(part * DIGIT, (part + 1) * DIGIT)
                bce_step(d, optims[id(d)], full[part].next()[:, crop], fake_batch()[:, crop])
            if dep_p is not None:
                real = joint.next()
                bce_step(dep_p, optims[id(dep_p)], real, shuffle_lower(real))
            fake = fake_batch()
            bce_step(dep_q, optims[id(dep_q)], fake, shuffle_lower(fake))
        gen_optim.zero_grad()
        logit = combined_logit(gen(noise()))
        gen_loss = F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))
        gen_loss.backward()
        gen_optim.step()
        gen_loss_sum += gen_loss.item()
        if step % args.log_every == 0:
            rate = step / (time.time() - start)
            print(f"step {step}/{args.steps}  {rate:.0f} updates/s  generator loss "
                  f"{gen_loss_sum / args.log_every:.3f} (mean since the last line)", flush=True)
            gen_loss_sum = 0.0
        if step in args.sample_at or step == args.steps:
            save_samples(gen, args.nz, os.path.join(args.out, f"samples_{step}.npy"))
    torch.save(gen.state_dict(), os.path.join(args.out, "generator.pt"))
    return {"seconds": time.time() - start}


def save_samples(gen: nn.Module, nz: int, path: str, count: int = 10000) -> None:
    """`count` pairs, float32 [count, 1568] in [0, 1], from noise of a generator of its
    own (seed 0), so that sampling leaves training's random numbers alone."""
    rng = torch.Generator().manual_seed(0)
    with torch.no_grad():
        samples = gen(torch.rand(count, nz, generator=rng) * 2 - 1)
    np.save(path, samples.numpy().astype(np.float32))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist_dir", required=True, help="folder of the official MNIST .gz files")
    parser.add_argument("--variant", choices=VARIANTS, default="factorgan")
    parser.add_argument("--same_digit_prob", type=float, default=0.9)
    parser.add_argument("--num_joint_samples", type=int, default=100)
    parser.add_argument("--steps", type=int, default=200000)
    parser.add_argument("--batch_size", type=int, default=25)
    parser.add_argument("--disc_iter", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--nz", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log_every", type=int, default=5000)
    parser.add_argument("--sample_at", type=lambda text: {int(x) for x in text.split(",") if x},
                        default=set(), help="comma-separated steps that also write samples")
    parser.add_argument("--out", required=True, help="output folder (created)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    result = train(args)
    with open(os.path.join(args.out, "run.json"), "w") as f:
        json.dump({**vars(args), "sample_at": sorted(args.sample_at), **result}, f, indent=1)


if __name__ == "__main__":
    main()
