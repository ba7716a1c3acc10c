"""Checks that K updates of our GAN equal K updates of the PyTorch reference.

Two halves, each in its own environment (the project's has no PyTorch):

    ../torchenv/bin/python tools/torch_reference/one_update.py write /tmp/updates.npz
    .venv/bin/python tools/torch_reference/one_update.py check /tmp/updates.npz

`write` builds the reference's generator and discriminator (`paired_mnist_torch.py`,
PyTorch's initialisation, re-parametrised spectral norm), draws K steps of real
batches and noise, and runs K updates (2 discriminator updates, then 1 generator
update each) with real and fake halves in one discriminator call, as ours does; it
saves inputs, initial and final weights. `check` loads the same initial weights into
our networks (`--spectral_norm=reparametrize`), runs our `gan.FactorGanUpdates` on the
same batches and noise and prints, per weight, the relative L2 difference between the
two implementations' weight changes. Adam's epsilon is 1e-30 in both: TensorFlow adds
it to sqrt(v) before the bias correction, PyTorch after, which makes the first updates
of weights with tiny gradients differ (on the order of 10 % of the change).
"""

import os
import sys

import numpy as np

STEPS, BATCH, NZ, PAIR = 5, 25, 50, 1568
EPSILON = 1e-30


def write(path: str) -> None:
    import torch
    from torch.nn import functional as F

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import paired_mnist_torch as ref

    torch.manual_seed(0)
    generator, disc = ref.generator(NZ), ref.Discriminator(PAIR)
    rng = np.random.default_rng(0)
    inputs = dict(real=rng.uniform(size=(STEPS, 2, BATCH, PAIR)),
                  noise_d=rng.uniform(-1, 1, size=(STEPS, 2, BATCH, NZ)),
                  noise_g=rng.uniform(-1, 1, size=(STEPS, BATCH, NZ)))
    inputs = {k: v.astype(np.float32) for k, v in inputs.items()}

    def weights(prefix):
        layers = {"g": [generator[0], generator[2], generator[4]],
                  "d": [d.linear for d in (disc.fc1, disc.fc2, disc.fc3)]}
        out = {f"{prefix}{net}{i}_{kind}": getattr(layer, kind).detach().numpy().copy()
               for net, group in layers.items() for i, layer in enumerate(group)
               for kind in ("weight", "bias")}
        out.update({f"{prefix}d{i}_u": d.u.numpy().copy()
                    for i, d in enumerate((disc.fc1, disc.fc2, disc.fc3))})
        return out

    initial = weights("initial_")
    adam = lambda params: torch.optim.Adam(params, lr=1e-4, betas=(0.5, 0.999), eps=EPSILON)  # noqa: E731
    g_optim, d_optim = adam(generator.parameters()), adam(disc.parameters())
    tensor = torch.from_numpy
    for step in range(STEPS):
        for j in range(2):
            with torch.no_grad():
                fake = generator(tensor(inputs["noise_d"][step, j]))
            d_optim.zero_grad()
            logits = disc(torch.cat([tensor(inputs["real"][step, j]), fake]))
            targets = torch.cat([torch.ones(BATCH), torch.zeros(BATCH)])
            (2 * F.binary_cross_entropy_with_logits(logits, targets)).backward()  # mean real + mean fake
            d_optim.step()
        g_optim.zero_grad()
        logit = disc(generator(tensor(inputs["noise_g"][step])))
        F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit)).backward()
        g_optim.step()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.savez(path, **inputs, **initial, **weights("final_"))
    print(f"wrote {path}")


def check(path: str) -> None:
    if not os.path.isfile(path):
        sys.exit(f"{path}: no such file; make it first with `one_update.py write {path}` "
                 "in an environment with PyTorch")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    import tensorflow as tf

    from tf_factorgan import gan
    from tf_factorgan.factorisation import Partition, Variant
    from tf_factorgan.models import spectral
    from tf_factorgan.models.mlp import MLPDiscriminator, MLPGenerator

    saved = np.load(path)
    with spectral.spectral_norm_scope(spectral.REPARAMETRIZE):
        generator, disc = MLPGenerator(PAIR), MLPDiscriminator(name="joint")
    generator(tf.zeros([1, NZ]))
    disc(tf.zeros([1, PAIR]))
    layers = {"g": [generator.hidden_1, generator.hidden_2, generator.out],
              "d": [disc.hidden_1.layer, disc.hidden_2.layer, disc.logit.layer]}
    for net, group in layers.items():
        for i, layer in enumerate(group):
            layer.kernel.assign(saved[f"initial_{net}{i}_weight"].T)  # PyTorch: [out, in]
            layer.bias.assign(saved[f"initial_{net}{i}_bias"])
    for i, wrapper in enumerate((disc.hidden_1, disc.hidden_2, disc.logit)):
        wrapper.vector_u.assign(saved[f"initial_d{i}_u"][None])

    config = gan.GanConfig(variant=Variant.GAN, adam_epsilon=EPSILON)
    optimizers = [gan.make_adam(config, name) for name in ("generator", "joint")]
    for optimizer, model in zip(optimizers, (generator, disc)):
        optimizer.build(model.trainable_variables)
    noise = []

    class Replayed:
        """The reference's noise, in the order it was drawn."""

        def noise(self, batch_size, nz):
            return tf.constant(noise.pop(0))

    models = gan.GanModels(generator, {"joint": disc}, optimizers[0], {"joint": optimizers[1]})
    updates = gan.FactorGanUpdates(models, config, Partition((PAIR // 2, PAIR // 2)), Replayed())
    for step in range(STEPS):
        for j in range(2):
            noise.append(saved["noise_d"][step, j])
            updates.discriminator_round({"joint": tf.constant(saved["real"][step, j])}, BATCH)
        noise.append(saved["noise_g"][step])
        updates.generator_update({}, BATCH)

    worst = 0.0
    for net, group in layers.items():
        for i, layer in enumerate(group):
            for kind, ours in (("weight", layer.kernel.numpy().T), ("bias", layer.bias.numpy())):
                start, end = saved[f"initial_{net}{i}_{kind}"], saved[f"final_{net}{i}_{kind}"]
                difference = np.linalg.norm((ours - start) - (end - start)) / np.linalg.norm(end - start)
                worst = max(worst, difference)
                print(f"{'generator' if net == 'g' else 'discriminator'} layer {i} {kind}: "
                      f"relative difference of the change {difference:.1e}")
    print(f"largest: {worst:.1e}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "check"):
        sys.exit(__doc__)
    {"write": write, "check": check}[sys.argv[1]](sys.argv[2])
