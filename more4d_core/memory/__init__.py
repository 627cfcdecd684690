"""Device memory: the modes that fit the 14B models on 24 / 16 GB cards (float8 weights, block
streaming, encoders leaving the device) and an estimate of their peak made without a GPU or weights."""
