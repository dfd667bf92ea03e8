"""The model: loading weights (bundled GGUF, directory, hub), the weight cache, tokens and their display forms."""
