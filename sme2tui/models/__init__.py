"""Model registry. The metadata here is torch-free; the model code lives in `builtin.py` and is only
imported by the export worker."""

from sme2tui.models.registry import BUILTIN_MODELS, BuiltinModel, builtin_model

__all__ = ["BUILTIN_MODELS", "BuiltinModel", "builtin_model"]
