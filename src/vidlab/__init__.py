"""vidlab: a toolbox and benchmark suite for video understanding."""

__version__ = "0.1.0"

__all__ = [
    "VidlabError",
    "convert_state_dict",
    "create_model",
    "inference_model",
    "list_models",
    "load_checkpoint",
    "load_model",
    "__version__",
]


def __getattr__(name: str):
    # Lazy, so `import vidlab.config` or the CLI's --help do not import the model zoo.
    if name in ("create_model", "list_models"):
        from vidlab import models

        return getattr(models, name)
    if name in ("convert_state_dict", "load_checkpoint"):
        from vidlab.models import convert

        return getattr(convert, name)
    if name == "VidlabError":
        from vidlab.errors import VidlabError

        return VidlabError
    if name == "inference_model":
        from vidlab.engine.fast import inference_model

        return inference_model
    if name == "load_model":
        from vidlab.engine.inference import load_model

        return load_model
    raise AttributeError(f"module 'vidlab' has no attribute '{name}'")
