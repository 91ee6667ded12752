"""gabic-explorer: GABIC and Zou2022 as real learned image codecs, with inspection tools."""

__version__ = "0.1.0"
