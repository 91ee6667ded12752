"""Rate-distortion evaluation: our codecs and classic ones (JPEG, WebP, AVIF) on an image
folder with real bitstreams, BD-rate / BD-PSNR between result files, and RD plots; classic
codecs at a given bpp (:func:`classic_at_bpp`, :func:`classic_at_same_size`); two
variable-rate codecs compared at the same real rate (:func:`equal_rate`); what encoder search gains
on one photo (:func:`search_gain`)."""

from .equal_rate import EqualRate, RateSearch, equal_rate, quality_for_bpp
from .same_size import classic_at_bpp, classic_at_same_size
from .search_gain import Coding, SearchGain, search_gain

__all__ = [
    "Coding",
    "EqualRate",
    "RateSearch",
    "SearchGain",
    "classic_at_bpp",
    "classic_at_same_size",
    "equal_rate",
    "quality_for_bpp",
    "search_gain",
]
