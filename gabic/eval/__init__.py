"""Rate-distortion evaluation: our codecs and classic ones (JPEG, WebP, AVIF) on an image
folder with real bitstreams, BD-rate / BD-PSNR between result files, and RD plots."""
