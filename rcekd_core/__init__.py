"""rcekd engine: data, models, distillation, evaluation and run directories (no UI imports)."""

__version__ = "0.1.0"
