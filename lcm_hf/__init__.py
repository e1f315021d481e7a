"""lcm-hf: the Large Connectome Model (LCM) as a HuggingFace-native package.

```python
from lcm_hf import LcmConfig, LcmForBeiPrediction, LcmProcessor, BeiVocabulary
```
"""

from transformers import AutoConfig, AutoModel, AutoModelForPreTraining

from .configuration_lcm import PRESETS, LcmConfig
from .modeling_lcm import (
    LcmForBeiPrediction,
    LcmForBeiPredictionOutput,
    LcmModel,
    LcmModelOutput,
    LcmPreTrainedModel,
    logits_to_bei_predictions,
)

__version__ = "0.1.0"

AutoConfig.register("lcm", LcmConfig, exist_ok=True)
AutoModel.register(LcmConfig, LcmModel, exist_ok=True)
AutoModelForPreTraining.register(LcmConfig, LcmForBeiPrediction, exist_ok=True)

__all__ = [
    "PRESETS",
    "LcmConfig",
    "LcmForBeiPrediction",
    "LcmForBeiPredictionOutput",
    "LcmModel",
    "LcmModelOutput",
    "LcmPreTrainedModel",
    "logits_to_bei_predictions",
]
