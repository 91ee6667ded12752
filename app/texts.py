"""Short explanations shown next to each view, written for a student."""

INTRO = """# GABIC explorer
Compare two learned image codecs on your own photo: **GABIC** (graph-based attention, ICIP 2024) and
its baseline **Zou2022** (window attention). Both really compress the image into a bitstream, and
each picture is the one decoding that bitstream gives, bit for bit; everything below is measured on that run.
"""

INPUT = """Drop or paste a photo, or pick a sample. Large photos are downscaled so the analysis stays
interactive; grayscale, transparent (composited on white), 16-bit and EXIF-rotated images are converted."""

CONTROLS = """**Quality** q1…q4 picks one of four trained models, or for a variable-rate model any value in
between (the paper's four λ at 1, 2, 3, 4); higher = more bits, better picture.
**k** is how many neighbours each token attends to in GABIC's graph (the value it was trained with is
marked; other values are *out of distribution*: the weights never saw them). **Block** chooses one of
the four attention modules; **head** one of the attention heads or their mean."""

RECONSTRUCTION = """Drag the slider to compare the original (left) with each decoded image. *Real bpp*
counts the bytes of the file; *estimated bpp* is what the entropy model predicts (they should be close).
PSNR and MS-SSIM: higher is closer to the original (MS-SSIM needs both sides > 160 px)."""

BITS = """Where do the bits go? Each map shows the bits spent per pixel (same colour scale for both
models). The difference map is **red where GABIC spends more**, **blue where it spends less**
(as in Fig. 5 of the paper). *y* is the main latent, *z* the hyperprior's side information."""

INSPECTOR = """**Click anywhere on the image.** The yellow box is the attention window holding that point
in the chosen block; the red dot is the token (node) there, and the lines go to its k nearest
neighbours *in feature space* — not necessarily the closest pixels. Line colour and width show the
attention weight α (bright/thick = more attention). On the right, the same token's attention over its
window: GABIC only looks at k nodes, Zou2022 looks at the whole (shifted) window."""

TABLE = """One row per neighbour, strongest first: its position, its offset from the clicked token
(rows, columns), the distance of the two feature vectors the graph was built from, and α per head."""

HEADS = """The clicked point seen by every block (rows) and every head (columns): each small map is the
attention over that block's window. Heads often specialise — some look far, some near."""

ANATOMY = """Every edge's score is the sum of a *content* part (query · key: do the two features match?)
and a *position* part learned from the edge attribute (how far apart the nodes are). The softmax over
the k edges turns the scores into α."""

RD = """Rate–distortion: bits per pixel (x) against quality (y) on this very image, for both models at
q1…q4 and for classic codecs. Up and to the left is better. The ringed points are the current quality.
The k sweep re-encodes the image with GABIC for each k."""

EXPORT = """Download everything shown (images, numbers and interactive figures) as one HTML file that
opens offline — handy to hand out in class."""

BITS_READABLE = """The maps are drawn over the photo (*map opacity*: 0 shows only the photo). Colours end at the
99th percentile of the pixels inside the **dotted box**: the codec pads the photo on the right and at the
bottom to a multiple of 64 px, and the latent cells outside the box straddle that padding and carry the
bits of the one ring of padding cells it codes, so they would otherwise set the whole scale."""

ENTROPY = """The **hyperprior** (z) predicts a mean μ and a scale σ for every element of the latent y; the
**slices** are coded one after the other, each predicting μ and σ from the hyperprior *and* the slices
before it. Each element costs −log₂ p(ŷ | μ, σ) bits: large where y is far from μ or σ is small. ŷ is
what the decoder gets after the latent residual prediction (LRP). The max-entropy channel is the one
that costs most (Zou2022's Fig. 3)."""

PROGRESSIVE = """Decoding only the first s slices (the rest taken at their predicted means μ) already gives
a picture: s = 0 is what the hyperprior alone predicts. The curve shows PSNR against the bits read so
far (z + the first s slices); all slices = the real decoder, bit for bit."""

GRAPH = """The clicked node's window, enlarged, with its grid of nodes: each line is a kNN edge, coloured and
widened by its attention weight α (GABIC). On the right, Zou2022's attention of the same node over its
whole (shifted) window."""

EQUAL_RATE = """Equal λ does not mean equal size. Here GABIC's variable-rate model codes the photo at the
chosen quality, and Zou2022's quality is searched (bisection) until its real file has the same size;
then the PSNRs and bit maps are compared at one rate, as the paper's Fig. 5 intends."""

LINKS = """**Share this view**: the address below (and the browser's address bar) holds the sample photo,
quality, k, block, head and clicked point; opening it restores the view. Uploaded photos cannot
travel in a URL — a link to an upload opens the default sample."""

SEARCH = """The encoder's analysis transform guesses the latents in one pass; for this one photo they are not
where its own rate + λ·distortion is lowest. **Search harder** refines them by gradient steps on that loss
(with the rounding softened and annealed, as in Yang et al., NeurIPS 2020) before they are coded. The
decoder and the container do not change — any decoder of the model reads the file — so only encoding
takes longer. On the first 24 BSDS500 val photos, 30 steps saved about 12 % of the bits at equal PSNR."""
