"""Pure computations on a model: the one-pass analysis, masking, batches, shifts, training, generation, the lens."""
