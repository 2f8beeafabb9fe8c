"""Building blocks shared by every variant: encoder/decoder backbones and bottlenecks."""
