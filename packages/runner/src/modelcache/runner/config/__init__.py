"""The workflow configuration: an Olive-shaped JSON document.

::

    {
      "input_model": {"type": "HfModel", "model_path": "sentence-transformers/all-MiniLM-L6-v2"},
      "passes": {
        "convert": {"type": "OnnxConversion", "target_opset": 17},
        "quantize": {"type": "OnnxDynamicQuantization"}
      },
      "evaluator": {"metrics": ["size", "latency", "fidelity"], "evaluate": "final"},
      "cloud_cache_config": {
        "account_url": "https://<account>.blob.core.windows.net",
        "container_name": "modelcache"
      },
      "cache_dir": ".modelcache/cache",
      "output_dir": "out"
    }

Every problem of a config is reported at once, each naming its JSON path
(``$.passes.convert.target_opset``): a :class:`ConfigError` carries them all. Relative paths
are relative to the configuration file's folder. ``docs/config.md`` is the reference.
"""

from ._errors import ConfigError, Problem, naming_config_file
from ._load import check_directories, load_config
from ._model import CloudCacheConfig, EvaluatorConfig, InputModelConfig, WorkflowConfig
from ._parse import parse_config
from ._passes import check_passes

__all__ = [
    "CloudCacheConfig",
    "ConfigError",
    "EvaluatorConfig",
    "InputModelConfig",
    "Problem",
    "WorkflowConfig",
    "check_directories",
    "check_passes",
    "load_config",
    "naming_config_file",
    "parse_config",
]
