"""Rate-distortion evaluation: our codecs and classic ones (JPEG, WebP, AVIF) on an image
folder with real bitstreams, BD-rate / BD-PSNR between result files, and RD plots; classic
codecs at a given bpp (:func:`classic_at_bpp`, :func:`classic_at_same_size`)."""

from .same_size import classic_at_bpp, classic_at_same_size

__all__ = ["classic_at_bpp", "classic_at_same_size"]
