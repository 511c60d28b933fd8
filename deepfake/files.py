"""File names of a detector folder (config, weights, model card), shared by loading, the Hub and training."""

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
