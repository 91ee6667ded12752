"""The codec both models share: analysis/synthesis transforms with two attention
modules each, a hyperprior, and a channel-wise autoregressive entropy model with
latent residual prediction. Subclasses only choose the window block."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from compressai.ans import BufferedRansEncoder, RansDecoder
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import GDN, conv3x3, subpel_conv3x3
from compressai.models import CompressionModel
from compressai.models.utils import conv, deconv
from compressai.ops import quantize_ste
from torch import Tensor, nn

from ..layers import AttentionModule, GainUnits
from .cells import coded_elements, fill_uncoded_cells
from .config import PAPER_CONFIG, ModelConfig

#: Names of the four attention modules, in data-flow order, and where they sit.
BLOCK_NAMES: dict[str, str] = {
    "encoder 1/4": "g_a.4",
    "encoder 1/16": "g_a.8",
    "decoder 1/16": "g_s.0",
    "decoder 1/4": "g_s.5",
}
#: Downsampling factor between image pixels and each block's feature grid.
BLOCK_STRIDES: dict[str, int] = {"encoder 1/4": 4, "encoder 1/16": 16, "decoder 1/16": 16, "decoder 1/4": 4}


def _slice_transform(in_channels: int, widths: tuple[int, ...], out_channels: int) -> nn.Sequential:
    """3x3 conv stack ``in -> widths... -> out`` with GELUs between (``cc_*``/``lrp`` transforms)."""
    layers: list[nn.Module] = []
    channels = (in_channels, *widths, out_channels)
    for i in range(len(channels) - 1):
        if i:
            layers.append(nn.GELU())
        layers.append(conv(channels[i], channels[i + 1], kernel_size=3, stride=1))
    return nn.Sequential(*layers)


class ChannelwiseAttentionCodec(CompressionModel):
    r"""Shared skeleton of :class:`~gabic.models.GABIC` and :class:`~gabic.models.Zou2022`.

    .. code-block:: none

        x ─ g_a: conv↓ GDN conv↓ GDN [attn w0] conv↓ GDN conv↓ [attn w1] ─► y
        y ─ h_a ─► z ─ EntropyBottleneck ─► ẑ ─┬─ h_mean_s ─► μ_hyper
                                               └─ h_scale_s ─► σ_hyper
        y = [y_0 … y_{s-1}] (channel slices), for each slice i:
            μ_i, σ_i = cc_mean_i / cc_scale_i(μ/σ_hyper, ŷ_max(0,i-5)..ŷ_{i-1})
            ŷ_i = round(y_i − μ_i) + μ_i  + 0.5·tanh(lrp_i(…, ŷ_i))
        ŷ ─ g_s: [attn w1] deconv↑ IGDN deconv↑ IGDN [attn w0] deconv↑ IGDN deconv↑ ─► x̂

    With ``config.rate_levels = L`` (variable rate) one model covers qualities
    ``1..L``: ``y`` and ``z`` are multiplied by the gain vectors of the quality
    (:class:`~gabic.layers.GainUnits`) before quantisation, and ``ẑ`` and
    ``ŷ`` by the inverse gains before ``h_*_s`` and ``g_s``. ``forward``,
    ``compress`` and ``decompress`` then take ``quality`` (default: the model's
    own ``quality``, the operating point it was loaded at).

    Subclasses implement :meth:`window_block`, the only difference between
    the two models. The slice loop (:meth:`_code_slices`) is written once and
    drives training (``forward``), :meth:`compress` and :meth:`decompress`.

    Attributes:
        arch: ``"gabic"`` or ``"zou2022"`` (set by the subclass).
        config: the widths (:class:`~gabic.models.ModelConfig`).
        model_id: the name containers record (``"gabic-small"``, ``"gabic-paper"``...);
            ``arch`` unless given.
        quality: the quality the weights were trained for (0: unknown), as given; for a
            variable-rate model the operating point used when a call passes no quality.
        card: the model card the weights came with (``{}`` if none).
    """

    arch: str = ""
    config: ModelConfig
    model_id: str
    quality: float
    card: dict[str, Any]

    def __init__(self, config: ModelConfig = PAPER_CONFIG, *, model_id: str | None = None, quality: float = 0,
                 card: dict[str, Any] | None = None) -> None:  # fmt: skip
        super().__init__()
        self.config = config
        self.model_id = self.arch if model_id is None else model_id
        self.quality = quality
        self.card = {} if card is None else card
        N, M = config.N, config.M
        wide, narrow = config.windows
        self.g_a = nn.Sequential(
            conv(3, N), GDN(N), conv(N, N), GDN(N),
            AttentionModule(N, self.window_block(N, wide)),
            conv(N, N), GDN(N), conv(N, M),
            AttentionModule(M, self.window_block(M, narrow)),
        )  # fmt: skip
        self.g_s = nn.Sequential(
            AttentionModule(M, self.window_block(M, narrow)),
            deconv(M, N), GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
            AttentionModule(N, self.window_block(N, wide)),
            deconv(N, N), GDN(N, inverse=True), deconv(N, 3),
        )  # fmt: skip
        h0, h1, h2, h3, z = config.hyper_widths()
        self.h_a = nn.Sequential(
            conv3x3(M, h0), nn.GELU(), conv3x3(h0, h1), nn.GELU(),
            conv3x3(h1, h2, stride=2), nn.GELU(), conv3x3(h2, h3), nn.GELU(),
            conv3x3(h3, z, stride=2),
        )  # fmt: skip
        self.h_mean_s = self._hyper_synthesis()
        self.h_scale_s = self._hyper_synthesis()

        widths = config.resolved_slice_widths()
        sc, support = config.slice_channels, config.max_support_slices
        self.cc_mean_transforms = nn.ModuleList(
            _slice_transform(M + sc * min(i, support), widths, sc) for i in range(config.num_slices)
        )
        self.cc_scale_transforms = nn.ModuleList(
            _slice_transform(M + sc * min(i, support), widths, sc) for i in range(config.num_slices)
        )
        self.lrp_transforms = nn.ModuleList(
            _slice_transform(M + sc * min(i + 1, support + 1), widths, sc) for i in range(config.num_slices)
        )
        self.entropy_bottleneck = EntropyBottleneck(config.hyper_channels)
        self.gaussian_conditional = GaussianConditional(None)
        if config.variable_rate:
            self.y_gain = GainUnits(M, config.rate_levels)
            self.z_gain = GainUnits(config.hyper_channels, config.rate_levels)

    def _hyper_synthesis(self) -> nn.Sequential:
        h0, h1, h2, h3, z = self.config.hyper_widths()
        return nn.Sequential(
            conv3x3(z, z), nn.GELU(), subpel_conv3x3(z, h3, 2), nn.GELU(),
            conv3x3(h3, h2), nn.GELU(), subpel_conv3x3(h2, h1, 2), nn.GELU(),
            conv3x3(h1, self.config.M),
        )  # fmt: skip

    def window_block(self, channels: int, window: int) -> nn.Module:
        """The block at ``conv_b.0`` of each attention module."""
        raise NotImplementedError

    # ------------------------------------------------------------------ blocks
    def attention_modules(self) -> Iterator[tuple[str, AttentionModule]]:
        """The four attention modules as ``(name, module)``, in data-flow order."""
        for name, path in BLOCK_NAMES.items():
            yield name, self.get_submodule(path)

    def window_blocks(self) -> Iterator[tuple[str, nn.Module]]:
        """The four window blocks (``conv_b.0``) as ``(name, block)``."""
        for name, module in self.attention_modules():
            yield name, module.window_block

    # ------------------------------------------------------------- entropy model
    def _hyper_decode(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        return self.h_mean_s(z_hat), self.h_scale_s(z_hat)

    def synthesise(self, y_hat: Tensor) -> Tensor:
        """``x_hat = g_s(y_hat)``: ``(B, M, h, w) -> (B, 3, 16h, 16w)`` (``y_hat`` already divided
        by the rate gain). In eval mode ``g_s`` runs on a channels-last copy of ``y_hat``: on a
        2-core CPU a fifth less time, and the same layout for forward, decompress and the
        inspection, so they agree exactly (only the picture depends on it, not the bitstream)."""
        if not self.training:
            y_hat = y_hat.contiguous(memory_format=torch.channels_last)
        return self.g_s(y_hat)

    def analyse(self, x: Tensor, gains: tuple[Tensor, ...] | None) -> tuple[Tensor, Tensor]:
        """Latent ``y = g_a(x)`` and hyper-latent ``z = h_a(y)`` as the codec entropy-codes them:
        each scaled by its gain (``gains[0]``, ``gains[2]`` of :meth:`rate_gains`) when there are gains."""
        y = self.g_a(x)
        if gains is not None:
            y = y * gains[0]
        z = self.h_a(y)
        if gains is not None:
            z = z * gains[2]
        return y, z

    def rate_gains(self, quality: float | None) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
        """``(y gain, y inverse gain, z gain, z inverse gain)`` at ``quality`` for a variable-rate
        model, each ``(1, C, 1, 1)``; ``None`` for a one-rate model (which ignores ``quality``)."""
        if not self.config.variable_rate:
            return None
        if quality is None:
            if not 1 <= self.quality <= self.config.rate_levels:
                raise ValueError(
                    f"this variable-rate model needs a quality in 1..{self.config.rate_levels} "
                    f"(it was built with quality={self.quality})"
                )
            quality = self.quality
        return (*self.y_gain.gains(quality), *self.z_gain.gains(quality))

    def _code_slices(
        self, latent_means: Tensor, latent_scales: Tensor, latent_hw: tuple[int, int],
        code_slice: Callable[[int, Tensor, Tensor], Tensor],
    ) -> Tensor:  # fmt: skip
        """The channel-wise autoregressive loop, shared by forward/compress/decompress.

        For each slice ``i`` it predicts ``mu_i, scale_i`` from the hyperprior
        and the first ``max_support_slices`` decoded slices, asks
        ``code_slice(i, mu_i, scale_i)`` for the quantised slice (which is where
        training adds likelihoods, the encoder writes symbols and the decoder
        reads them), then adds the latent residual prediction.

        Returns ``y_hat``: ``(B, M, h, w)``.
        """
        # Every tensor is made contiguous: the encoder, the decoder and forward must run the
        # convolutions on identical memory layouts (tiny latents can come out channels-last
        # from PixelShuffle), or results differ in the last bit and decoding is not exact.
        height, width = latent_hw
        support_limit = self.config.max_support_slices
        latent_means, latent_scales = latent_means.contiguous(), latent_scales.contiguous()
        y_hat_slices: list[Tensor] = []
        for i in range(self.config.num_slices):
            support = y_hat_slices[:support_limit]
            mean_support = torch.cat([latent_means, *support], dim=1)
            scale_support = torch.cat([latent_scales, *support], dim=1)
            mu = self.cc_mean_transforms[i](mean_support)[:, :, :height, :width].contiguous()
            scale = self.cc_scale_transforms[i](scale_support)[:, :, :height, :width].contiguous()
            y_hat_slice = code_slice(i, mu, scale).contiguous()
            lrp = self.lrp_transforms[i](torch.cat([mean_support, y_hat_slice], dim=1))
            y_hat_slices.append((y_hat_slice + 0.5 * torch.tanh(lrp)).contiguous())
        return torch.cat(y_hat_slices, dim=1).contiguous()

    def _z_medians(self) -> Tensor:
        return self.entropy_bottleneck._get_medians().detach().view(1, -1, 1, 1)

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor, quality: float | None = None, coded_cells: Tensor | None = None
                ) -> dict[str, object]:  # fmt: skip
        """Training/evaluation pass. ``x``: ``(B, 3, H, W)`` in [0, 1], H and W multiples of 64;
        ``quality`` in ``1..rate_levels`` for a variable-rate model (ignored otherwise);
        ``coded_cells`` as in :meth:`compress` (uncoded cells: likelihood 1, ``ŷ`` of the
        nearest coded cell).

        Returns ``{"x_hat", "likelihoods": {"y", "z"}}`` (the CompressAI contract).
        In eval mode ``x_hat`` equals :meth:`decompress` of :meth:`compress` exactly.

        Under an outer ``torch.autocast`` (training with ``--bf16``) the transforms run in the
        autocast dtype while gains, noise/rounding and both entropy models run in float32
        (autocast disabled, inputs cast with ``.float()``); ``x_hat`` is returned as float32.
        Without autocast every cast is a no-op.
        """
        round_ = quantize_ste if self.training else torch.round
        gains = self.rate_gains(quality)
        coded_cells = None if coded_cells is None else coded_cells.to(x.device)
        device_type = x.device.type
        y = self.g_a(x)
        with torch.autocast(device_type, enabled=False):
            y = y.float()
            if gains is not None:
                y = y * gains[0]
        z = self.h_a(y)
        with torch.autocast(device_type, enabled=False):
            z = z.float()
            if gains is not None:
                z = z * gains[2]
            _, z_likelihoods = self.entropy_bottleneck(z)
            medians = self._z_medians()
            z_hat = round_(z - medians) + medians
            z_hat = z_hat if gains is None else z_hat * gains[3]
        latent_means, latent_scales = self._hyper_decode(z_hat)

        y_slices = y.chunk(self.config.num_slices, dim=1)
        y_likelihoods: list[Tensor] = []

        def quantise(i: int, mu: Tensor, scale: Tensor) -> Tensor:
            with torch.autocast(device_type, enabled=False):
                mu, scale = mu.float(), scale.float()
                _, likelihood = self.gaussian_conditional(y_slices[i], scale, mu)
                y_hat_slice = round_(y_slices[i] - mu) + mu
                if coded_cells is not None:
                    likelihood = torch.where(coded_cells, likelihood, torch.ones_like(likelihood))
                    y_hat_slice = fill_uncoded_cells(y_hat_slice, coded_cells)
                y_likelihoods.append(likelihood)
                return y_hat_slice

        y_hat = self._code_slices(latent_means, latent_scales, y.shape[-2:], quantise)
        with torch.autocast(device_type, enabled=False):
            y_hat_scaled = y_hat if gains is None else y_hat.float() * gains[1]
        x_hat = self.synthesise(y_hat_scaled).float()
        return {
            "x_hat": x_hat,
            "likelihoods": {"y": torch.cat(y_likelihoods, dim=1), "z": z_likelihoods},
            "y_hat": y_hat,
        }

    # ------------------------------------------------------------ bitstreams
    def _rans_tables(self) -> tuple[list, list[int], list[int]]:
        gc = self.gaussian_conditional
        return (
            gc.quantized_cdf.tolist(),
            gc.cdf_length.reshape(-1).int().tolist(),
            gc.offset.reshape(-1).int().tolist(),
        )

    @torch.no_grad()
    def compress(self, x: Tensor, with_likelihoods: bool = False, quality: float | None = None,
                 coded_cells: Tensor | None = None, latents: tuple[Tensor, Tensor] | None = None
                 ) -> dict[str, object]:  # fmt: skip
        """Encode ``x`` (``(B, 3, H, W)``, H and W multiples of 64) to rANS streams
        (at ``quality`` for a variable-rate model).

        ``coded_cells``: ``(H/16, W/16)`` bool, a rectangle of latent cells whose elements the
        y stream carries (default: all). The other cells cost no bits: after each slice both
        sides set them to the nearest coded cell's ``ŷ``. The codec passes the image's cells and
        one ring around them (:func:`gabic.codec.coded_cells`). ``latents``: ``(y, z)`` to code
        instead of :meth:`analyse` of ``x``, scaled as it returns them (an encoder search's result).

        Returns ``{"strings": [y_strings, z_strings], "shape": z.shape[-2:]}``
        with one y and one z string per image (all y slices share one stream).
        With ``with_likelihoods`` it also returns ``"likelihoods": {"y", "z"}``,
        the same values an eval-mode ``forward`` gives. ``"y_hat"`` ``(B, M, h, w)`` is the
        quantised latent as the decoder will rebuild it, bit for bit (both sides run the same
        slice loop on the same symbols): :meth:`reconstruct` of it is :meth:`decompress`'s image.
        """
        gains = self.rate_gains(quality)
        coded_cells = None if coded_cells is None else coded_cells.to(x.device)
        y, z = self.analyse(x, gains) if latents is None else latents
        y_likelihoods: list[Tensor] = []
        z_likelihoods = self.entropy_bottleneck(z, training=False)[1] if with_likelihoods else None
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.shape[-2:])
        latent_means, latent_scales = self._hyper_decode(z_hat if gains is None else z_hat * gains[3])

        y_slices = y.chunk(self.config.num_slices, dim=1)
        symbols: list[Tensor] = []
        indexes: list[Tensor] = []
        gc = self.gaussian_conditional

        def encode(i: int, mu: Tensor, scale: Tensor) -> Tensor:
            index = gc.build_indexes(scale)
            y_q = gc.quantize(y_slices[i], "symbols", mu)
            if with_likelihoods:
                likelihood = gc(y_slices[i], scale, mu, training=False)[1]
                if coded_cells is not None:
                    likelihood = torch.where(coded_cells, likelihood, torch.ones_like(likelihood))
                y_likelihoods.append(likelihood)
            symbols.append(y_q)
            indexes.append(index)
            y_hat_slice = gc.dequantize(y_q, mu)
            return y_hat_slice if coded_cells is None else fill_uncoded_cells(y_hat_slice, coded_cells)

        y_hat = self._code_slices(latent_means, latent_scales, y.shape[-2:], encode)
        cdf, cdf_lengths, offsets = self._rans_tables()
        y_strings = []
        for b in range(x.shape[0]):
            encoder = BufferedRansEncoder()
            encoder.encode_with_indexes(
                torch.cat([coded_elements(s[b], coded_cells).reshape(-1) for s in symbols]).tolist(),
                torch.cat([coded_elements(i[b], coded_cells).reshape(-1) for i in indexes]).tolist(),
                cdf, cdf_lengths, offsets,
            )  # fmt: skip
            y_strings.append(encoder.flush())
        out: dict[str, object] = {"strings": [y_strings, z_strings], "shape": z.shape[-2:], "y_hat": y_hat}
        if with_likelihoods:
            out["likelihoods"] = {"y": torch.cat(y_likelihoods, dim=1), "z": z_likelihoods}
        return out

    @torch.no_grad()
    def decompress(self, strings: list[list[bytes]], shape: tuple[int, int], quality: float | None = None,
                   coded_cells: Tensor | None = None) -> dict[str, Tensor]:  # fmt: skip
        """Decode the output of :meth:`compress` (made at ``quality`` for a variable-rate model,
        with the same ``coded_cells``). Returns ``{"x_hat": (B, 3, H, W)}`` (unclamped)."""
        gains = self.rate_gains(quality)
        y_strings, z_strings = strings
        z_hat = self.entropy_bottleneck.decompress(z_strings, shape)
        coded_cells = None if coded_cells is None else coded_cells.to(z_hat.device)
        latent_means, latent_scales = self._hyper_decode(z_hat if gains is None else z_hat * gains[3])
        latent_hw = (z_hat.shape[-2] * 4, z_hat.shape[-1] * 4)
        cdf, cdf_lengths, offsets = self._rans_tables()
        decoders = [RansDecoder() for _ in y_strings]
        for decoder, string in zip(decoders, y_strings, strict=True):
            decoder.set_stream(string)
        gc = self.gaussian_conditional
        cells_on_cpu = None if coded_cells is None else coded_cells.cpu()  # where the decoded values go

        def decode(i: int, mu: Tensor, scale: Tensor) -> Tensor:
            index = gc.build_indexes(scale)
            values = torch.zeros(mu.shape, dtype=torch.float32)
            for b, decoder in enumerate(decoders):
                read = decoder.decode_stream(coded_elements(index[b], coded_cells).reshape(-1).tolist(),
                                             cdf, cdf_lengths, offsets)  # fmt: skip
                read = torch.tensor(read, dtype=torch.float32)
                if coded_cells is None:
                    values[b] = read.view(mu.shape[1:])
                else:
                    values[b][:, cells_on_cpu] = read.view(mu.shape[1], -1)
            y_hat_slice = gc.dequantize(values.to(mu.device), mu)
            return y_hat_slice if coded_cells is None else fill_uncoded_cells(y_hat_slice, coded_cells)

        y_hat = self._code_slices(latent_means, latent_scales, latent_hw, decode)
        return {"x_hat": self.reconstruct(y_hat, quality)}

    @torch.no_grad()
    def reconstruct(self, y_hat: Tensor, quality: float | None = None) -> Tensor:
        """The decoder's last step: ``x_hat = g_s(y_hat / gain)``, ``(B, M, h, w) -> (B, 3, 16h, 16w)``
        (unclamped) for the ``y_hat`` that :meth:`decompress` rebuilds or :meth:`compress` returns
        (at ``quality`` for a variable-rate model)."""
        gains = self.rate_gains(quality)
        return self.synthesise(y_hat if gains is None else y_hat * gains[1])
