"""The workflow configuration: an Olive-shaped JSON (or YAML) document; Olive's own configs
are read too, their fields that mean nothing here noted (``WorkflowConfig.notes``).

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

from ._cloud import CloudOverrides, check_account_name
from ._errors import ConfigError, Problem, naming_config_file
from ._input import HANDLER_FIELDS, unsupported_input_model
from ._load import YAML_SUFFIXES, check_directories, load_config, read_document
from ._model import (
    MODEL_TYPES,
    CloudCacheConfig,
    EvaluatorConfig,
    InputModelConfig,
    PassParameters,
    WorkflowConfig,
)
from ._olive import OLIVE_FIELDS, pass_flows_of, search_strategy_of, searches
from ._parse import parse_config
from ._passes import check_passes
from ._structure import check_container_name
from ._trust import SignerConfig, SigningConfig, TrustConfig

__all__ = [
    "HANDLER_FIELDS",
    "MODEL_TYPES",
    "OLIVE_FIELDS",
    "YAML_SUFFIXES",
    "CloudCacheConfig",
    "CloudOverrides",
    "ConfigError",
    "EvaluatorConfig",
    "InputModelConfig",
    "PassParameters",
    "Problem",
    "SignerConfig",
    "SigningConfig",
    "TrustConfig",
    "WorkflowConfig",
    "check_account_name",
    "check_container_name",
    "check_directories",
    "check_passes",
    "load_config",
    "naming_config_file",
    "parse_config",
    "read_document",
    "pass_flows_of",
    "search_strategy_of",
    "searches",
    "unsupported_input_model",
]
