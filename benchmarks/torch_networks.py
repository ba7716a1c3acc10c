"""Our segmentation FactorGAN update restated in PyTorch, for `benchmarks.side_by_side`.

The networks and the update that `tf_factorgan.experiments.image2image` builds for
photo -> label map with variant factorgan (RGB label maps, no pairs loss, the default
settings), restated from our code (`models/unet.py`, `models/conv.py`,
`models/spectral.py`, `gan.py`) only as far as equal work needs: the same layers with
the same shapes and parameter counts (hence the same FLOPs), the same forward passes
with and without gradients, BatchNorm on batch statistics, and the same spectral-norm
power iteration (Keras' projection, our default) in every training call of a
discriminator. Initialisation, seeds and random streams are not ours: the numbers
these networks compute are not compared, their cost is.

Tensors are NCHW, PyTorch's layout (`channels_last` keeps the shapes and stores them
NHWC, as ours are); B is the batch, H = W the image size, nz the noise size.

One update (`FactorGanUpdate.__call__`; gan.FactorGanUpdates with disc_iter=2 and
fake_batches="shared"):

  each of 2 discriminator rounds (fresh real batches each):
    G(photos [B, 3, H, W], noise [B, nz]), training mode, without gradient
        -> fake label maps [B, 3, H, W]; fake pairs = (photos, fakes) [B, 6, H, W]
    D_1 (marginal of the label maps) on [real maps; fake maps]         [2B, 3, H, W]
    D_P on [real pairs; real pairs, maps shuffled across the batch]     [2B, 6, H, W]
    D_Q on [fake pairs; fake pairs, maps shuffled across the batch]     [2B, 6, H, W]
      each: power iteration and W <- W / sigma, forward, sigmoid cross-entropy
      (real -> 1, fake -> 0, summed over both halves, averaged over B), backward to its
      own weights (its input needs no gradient), one Adam step;
  generator update (the last round's photos, new noise):
    G with gradient; logit = D_1(maps) + D_P(pairs) - D_Q(pairs) [B], each
    discriminator in training mode (its power iteration and projection run again);
    non-saturating loss mean(softplus(-logit)); backward to G's weights only (the
    discriminators' weights get no gradient, their inputs do); one Adam step.

bfloat16 is `torch.autocast("cpu", dtype=torch.bfloat16)` around the forward passes,
the analogue of Keras' mixed_bfloat16: float32 weights and optimizer state,
convolutions in bfloat16; the U-Net's output convolution and the discriminators'
logit layer compute in float32, as ours do (their Keras dtype is float32).
"""

import contextlib

import torch
from torch import nn
from torch.nn import functional as F

# Keras' BatchNormalization defaults: epsilon 1e-3, moving averages kept with 0.99 of
# the old value (PyTorch's momentum is the weight of the new one).
KERAS_BATCHNORM_EPSILON = 1e-3
KERAS_BATCHNORM_MOMENTUM = 0.01
# Decoder stages of the U-Net, from the bottleneck (H/8) to the output (H).
NUM_DECODER_STAGES = 4


class DoubleConv(nn.Module):
    """[B, C, h, w] -> [B, channels, h, w]: (3x3 conv without bias, BatchNorm, ReLU)
    twice (unet._DoubleConv)."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.conv_1 = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        self.norm_1 = nn.BatchNorm2d(channels, eps=KERAS_BATCHNORM_EPSILON,
                                     momentum=KERAS_BATCHNORM_MOMENTUM)
        self.conv_2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm_2 = nn.BatchNorm2d(channels, eps=KERAS_BATCHNORM_EPSILON,
                                     momentum=KERAS_BATCHNORM_MOMENTUM)

    def forward(self, x):
        x = F.relu(self.norm_1(self.conv_1(x)))
        return F.relu(self.norm_2(self.conv_2(x)))


def _float32(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """module(x) computed in float32 inside or outside an autocast region (the layers
    whose Keras dtype is float32)."""
    with torch.autocast("cpu", enabled=False):
        return module(x.float())


class UNet(nn.Module):
    """condition [B, in_channels, H, W] in [0, 1], noise [B, nz] in [-1, 1]
    -> [B, output_channels, H, W] float32 in [0, 1] (unet.UNet with a sigmoid).

    Encoder: double convolutions of ngf, 2ngf, 4ngf, 8ngf, 8ngf channels with 2x2 max
    pooling between them (bottleneck H/16). The noise goes through a Linear layer to
    noise_channels maps of the bottleneck's size. Decoder: four times bilinear 2x
    upsampling (half-pixel centres, as Keras'), concatenation with the encoder's
    features of that size and, in the last noise_stages stages, noise_map_channels
    per-pixel Uniform(-1, 1) noise maps; double convolutions of 4ngf, 2ngf, ngf, ngf
    channels; a 1x1 convolution with bias and a sigmoid. H and W: multiples of 16.
    """

    def __init__(self, size: int, in_channels: int = 3, output_channels: int = 3, ngf: int = 32,
                 nz: int = 50, noise_channels: int = 2, noise_stages: int = 3,
                 noise_map_channels: int = 32):
        super().__init__()
        if size % 16:
            raise ValueError(f"the U-Net needs an image size that is a multiple of 16, got {size}")
        self.bottleneck_size = size // 16
        self.noise_channels = noise_channels
        self.noise_stages = noise_stages
        self.noise_map_channels = noise_map_channels
        self.down_0 = DoubleConv(in_channels, ngf)
        self.down_1 = DoubleConv(ngf, 2 * ngf)
        self.down_2 = DoubleConv(2 * ngf, 4 * ngf)
        self.down_3 = DoubleConv(4 * ngf, 8 * ngf)
        self.bottleneck = DoubleConv(8 * ngf, 8 * ngf)
        self.noise_dense = nn.Linear(nz, noise_channels * self.bottleneck_size ** 2)
        # Decoder inputs: the upsampled features, the skip features, the noise maps.
        first_noisy = NUM_DECODER_STAGES - noise_stages
        maps = [noise_map_channels if stage >= first_noisy else 0 for stage in range(NUM_DECODER_STAGES)]
        self.up_3 = DoubleConv(8 * ngf + noise_channels + 8 * ngf + maps[0], 4 * ngf)
        self.up_2 = DoubleConv(4 * ngf + 4 * ngf + maps[1], 2 * ngf)
        self.up_1 = DoubleConv(2 * ngf + 2 * ngf + maps[2], ngf)
        self.up_0 = DoubleConv(ngf + ngf + maps[3], ngf)
        self.out = nn.Conv2d(ngf, output_channels, 1)

    def forward(self, condition, noise):
        skip_0 = self.down_0(condition)
        skip_1 = self.down_1(F.max_pool2d(skip_0, 2))
        skip_2 = self.down_2(F.max_pool2d(skip_1, 2))
        skip_3 = self.down_3(F.max_pool2d(skip_2, 2))
        x = self.bottleneck(F.max_pool2d(skip_3, 2))
        side = self.bottleneck_size
        projected = self.noise_dense(noise)
        if _is_channels_last(x):  # as Keras reshapes it: [B, side, side, noise_channels]
            bottleneck_noise = projected.reshape(-1, side, side, self.noise_channels).permute(0, 3, 1, 2)
        else:
            bottleneck_noise = projected.reshape(-1, self.noise_channels, side, side)
        x = torch.cat([x, bottleneck_noise.to(x.dtype)], dim=1)
        first_noisy = NUM_DECODER_STAGES - self.noise_stages
        stages = zip((self.up_3, self.up_2, self.up_1, self.up_0), (skip_3, skip_2, skip_1, skip_0))
        for index, (up, skip) in enumerate(stages):
            upsampled = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            inputs = [upsampled.to(skip.dtype), skip]
            if index >= first_noisy:
                # Our maps are drawn per row from its noise vector; the draw costs the
                # same here (one uniform value per map element).
                inputs.append(_uniform_maps(skip, self.noise_map_channels))
            # Inputs of one layout concatenate into it (else cat falls back to NCHW).
            x = up(torch.cat(inputs, dim=1))
        return torch.sigmoid(_float32(self.out, x))


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _uniform_maps(like: torch.Tensor, channels: int) -> torch.Tensor:
    """[B, channels, h, w] Uniform(-1, 1) in the dtype and layout of `like` [B, C, h, w]."""
    batch, _, height, width = like.shape
    if _is_channels_last(like):  # drawn NHWC: a channels_last view, no copy
        maps = torch.rand(batch, height, width, channels).permute(0, 3, 1, 2)
    else:
        maps = torch.rand(batch, channels, height, width)
    return (maps * 2 - 1).to(like.dtype)


class SpectralProjection:
    """Keras' SpectralNormalization of one layer (spectral.ProjectedSpectralNorm): in a
    training call, one power iteration on the weight seen as a [out, fan_in] matrix W
    (v <- unit(u W), u <- unit(W v)), then W <- W / (u W v), without gradient. u [out]
    is a buffer of the layer ("u"), as Keras' vector_u is a non-trainable variable."""

    @staticmethod
    def attach(layer: nn.Module) -> nn.Module:
        layer.register_buffer("u", torch.randn(layer.weight.shape[0]) * 0.02)
        return layer

    @staticmethod
    @torch.no_grad()
    def project(layer: nn.Module) -> None:
        weight = layer.weight.reshape(layer.weight.shape[0], -1)
        v = F.normalize(layer.u @ weight, dim=0)
        u = F.normalize(weight @ v, dim=0)
        layer.u.copy_(u)
        layer.weight.div_(u @ weight @ v)


class ConvDiscriminator(nn.Module):
    """images [B, in_channels, H, W] -> logits [B, 1] float32 (conv.ConvDiscriminator).

    max(1, floor(log2(H)) - 3) 4x4 stride-2 convolutions with bias ('same' padding:
    one pixel each side at even sizes) of filters, 2 filters, ... channels, each
    followed by LeakyReLU(0.2); a Linear(1) without bias on the flattened features.
    Every layer is spectrally normalised (`SpectralProjection`) in each training-mode
    call."""

    def __init__(self, size: int, in_channels: int, filters: int = 32):
        super().__init__()
        num_layers = max(1, size.bit_length() - 1 - 3)
        if size % 2 ** num_layers:
            raise ValueError(f"a discriminator of {num_layers} stride-2 layers needs a size "
                             f"divisible by {2 ** num_layers}, got {size}")
        channels = [in_channels] + [filters * 2 ** i for i in range(num_layers)]
        self.convs = nn.ModuleList(
            SpectralProjection.attach(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1))
            for c_in, c_out in zip(channels, channels[1:]))
        features = channels[-1] * (size // 2 ** num_layers) ** 2
        self.logit = SpectralProjection.attach(nn.Linear(features, 1, bias=False))

    def forward(self, images):
        if self.training:
            for layer in (*self.convs, self.logit):
                SpectralProjection.project(layer)
        x = images
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return _float32(self.logit, x.flatten(1))


def parameter_counts(network: nn.Module) -> dict:
    """{"trainable": weights trained by Adam, "state": running statistics and spectral
    vectors (Keras' non-trainable variables)} in numbers of values."""
    trainable = sum(p.numel() for p in network.parameters() if p.requires_grad)
    state = sum(b.numel() for name, b in network.named_buffers()
                if not name.endswith("num_batches_tracked"))  # a counter Keras has not
    return {"trainable": trainable, "state": state}


class RandomImages:
    """In-memory uint8 images [N, H, W, 3] (the benchmark's random data); `batch(n)`
    -> float32 [n, 3, H, W] in [0, 1] of n rows drawn at random."""

    def __init__(self, count: int, size: int, generator: torch.Generator):
        self.images = torch.randint(0, 256, (count, size, size, 3), dtype=torch.uint8,
                                    generator=generator)
        self.generator = generator

    def batch(self, rows: int, memory_format: torch.memory_format) -> torch.Tensor:
        index = torch.randint(0, self.images.shape[0], (rows,), generator=self.generator)
        nhwc = self.images.index_select(0, index).float() / 255.0
        return nhwc.permute(0, 3, 1, 2).contiguous(memory_format=memory_format)


def _shuffle_labels(pairs: torch.Tensor) -> torch.Tensor:
    """[B, 6, H, W] (photo, map) pairs -> the same with the maps permuted across the
    batch (factorisation.shuffle_parts): the product of the marginals."""
    photos, maps = pairs[:, :3], pairs[:, 3:]
    return torch.cat([photos, maps[torch.randperm(pairs.shape[0])]], dim=1)


def discriminator_loss(logits: torch.Tensor, batch: int) -> torch.Tensor:
    """logits [2B, 1], real rows first -> sum of CE(real, 1) + CE(fake, 0) / B."""
    real, fake = logits.float().reshape(2, batch)
    return (F.softplus(-real) + F.softplus(fake)).sum() / batch


class FactorGanUpdate:
    """One conditional FactorGAN update (2 discriminator rounds, 1 generator update) of
    batch `batch` at `size` x `size`, in `precision` ("float32" or "bfloat16") with
    `memory_format` (torch.contiguous_format or torch.channels_last); calling it runs
    one update and returns the generator's loss (a float)."""

    def __init__(self, size: int, precision: str, memory_format: torch.memory_format,
                 batch: int = 25, nz: int = 50, noise_stages: int = 3, disc_iter: int = 2,
                 num_images: int = 200, seed: int = 0):
        if precision not in ("float32", "bfloat16"):
            raise ValueError(f"precision must be float32 or bfloat16, got {precision!r}")
        torch.manual_seed(seed)
        self.batch, self.nz, self.disc_iter = batch, nz, disc_iter
        self.precision, self.memory_format = precision, memory_format
        self.generator = UNet(size, nz=nz, noise_stages=noise_stages)
        self.discriminators = {
            "marginal_1": ConvDiscriminator(size, 3),
            "p_dependency": ConvDiscriminator(size, 6),
            "q_dependency": ConvDiscriminator(size, 6),
        }
        for network in self.networks().values():
            network.to(memory_format=memory_format).train()
        # Adam as ours (gan.make_adam): lr 1e-4, betas (0.5, 0.999), epsilon 1e-7; the
        # fused kernel, as our FusedAdam.
        adam = lambda network: torch.optim.Adam(  # noqa: E731
            network.parameters(), lr=1e-4, betas=(0.5, 0.999), eps=1e-7, fused=True)
        self.generator_adam = adam(self.generator)
        self.discriminator_adams = {name: adam(d) for name, d in self.discriminators.items()}
        data = torch.Generator().manual_seed(seed)
        self.photos = RandomImages(num_images, size, data)
        self.label_maps = RandomImages(num_images, size, data)

    def networks(self) -> dict:
        return {"generator": self.generator, **self.discriminators}

    def parameter_counts(self) -> dict:
        """network name -> `parameter_counts`."""
        return {name: parameter_counts(network) for name, network in self.networks().items()}

    def _compute(self):
        if self.precision == "bfloat16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _complete(self, photos: torch.Tensor) -> torch.Tensor:
        """photos [B, 3, H, W] -> (photos, generated maps) pairs [B, 6, H, W]."""
        noise = torch.rand(photos.shape[0], self.nz) * 2 - 1
        maps = self.generator(photos, noise)
        return torch.cat([photos, maps.to(photos.dtype)], dim=1)

    def _real_batches(self):
        """The streams of one round: photos (marginal_0), label maps (marginal_1) and
        paired samples (joint), each [B, C, H, W]. Random data: a pair's two rows are
        drawn independently, at the cost of a real pair."""
        fmt = self.memory_format
        pairs = torch.cat([self.photos.batch(self.batch, fmt), self.label_maps.batch(self.batch, fmt)], 1)
        return self.photos.batch(self.batch, fmt), self.label_maps.batch(self.batch, fmt), pairs

    def discriminator_round(self) -> torch.Tensor:
        """One Adam step of every discriminator; returns the round's photos."""
        photos, real_maps, real_pairs = self._real_batches()
        with torch.no_grad(), self._compute():
            fake_pairs = self._complete(photos)
        inputs = {
            "marginal_1": (real_maps, fake_pairs[:, 3:]),
            "p_dependency": (real_pairs, _shuffle_labels(real_pairs)),
            "q_dependency": (fake_pairs, _shuffle_labels(fake_pairs)),
        }
        for name, (real, fake) in inputs.items():
            both = torch.cat([real, fake], dim=0).contiguous(memory_format=self.memory_format)
            with self._compute():
                logits = self.discriminators[name](both)
            loss = discriminator_loss(logits, self.batch)
            adam = self.discriminator_adams[name]
            adam.zero_grad(set_to_none=True)
            loss.backward()
            adam.step()
        return photos

    def generator_update(self, photos: torch.Tensor) -> float:
        """One Adam step of the generator on the combined logit of new fakes of `photos`."""
        for d in self.discriminators.values():
            d.requires_grad_(False)
        with self._compute():
            fake_pairs = self._complete(photos)
            fake_maps = fake_pairs[:, 3:].contiguous(memory_format=self.memory_format)
            logit = (self.discriminators["marginal_1"](fake_maps)
                     + self.discriminators["p_dependency"](fake_pairs)
                     - self.discriminators["q_dependency"](fake_pairs))
        loss = F.softplus(-logit.float()).mean()
        self.generator_adam.zero_grad(set_to_none=True)
        loss.backward()
        self.generator_adam.step()
        for d in self.discriminators.values():
            d.requires_grad_(True)
        return loss.item()

    def __call__(self) -> float:
        for _ in range(self.disc_iter):
            photos = self.discriminator_round()
        return self.generator_update(photos)


class ConvLimit:
    """The conv limit: a 3x3 convolution channels -> channels with bias-free 'same'
    padding on [batch, channels, size, size], forward and backward (input and weight
    gradients) in `precision`; calling it runs one pass."""

    def __init__(self, precision: str, memory_format: torch.memory_format, batch: int = 25,
                 size: int = 128, channels: int = 64, seed: int = 0):
        torch.manual_seed(seed)
        dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
        self.precision = precision
        # Activations in the compute dtype, the weight float32 (autocast casts it), as
        # inside a network.
        self.inputs = torch.rand(batch, channels, size, size).to(dtype).contiguous(
            memory_format=memory_format).requires_grad_(True)
        self.output_gradient = torch.rand(batch, channels, size, size).to(dtype).contiguous(
            memory_format=memory_format)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(memory_format=memory_format)

    def __call__(self) -> None:
        self.inputs.grad = None
        self.conv.weight.grad = None
        context = (torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bfloat16"
                   else contextlib.nullcontext())
        with context:
            outputs = self.conv(self.inputs)
        outputs.backward(self.output_gradient)
