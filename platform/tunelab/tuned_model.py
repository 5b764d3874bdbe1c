"""A tuned model with its study's preprocessing: raw inputs in, answers out; saved as a bundle.

A bundle is a folder anyone can load without the study or its data:
  model.safetensors   the weights (safetensors: tensors only, nothing to execute)
  model.json          the model's name, parameters and signature, the trial and its metrics
  preprocessing.json  what the study fitted on its training rows (scaling, categories, class names)
  README.md           what it is and how to load it
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.datasets.preprocessing import Preprocessing
from tunelab.errors import BadInputError

BUNDLE_FORMAT = 1
WEIGHTS_FILE = "model.safetensors"
MODEL_FILE = "model.json"
PREPROCESSING_FILE = "preprocessing.json"
# Rows per forward pass when predicting: bounded memory for any number of inputs.
PREDICT_CHUNK = 8192


@dataclass
class TunedModel:
    """A `torch.nn.Module` (in eval mode) and the steps that turn raw inputs into its inputs."""

    module: Any  # torch.nn.Module
    preprocessing: Preprocessing
    model_name: str
    model_params: dict[str, Any]
    trial: dict[str, Any] = field(default_factory=dict)  # study, trial number and id, epoch
    metrics: dict[str, float] = field(default_factory=dict)

    def outputs(self, x: Any) -> np.ndarray:
        """The model's raw outputs (logits, or scaled regression values) for raw inputs."""
        import torch

        inputs = torch.from_numpy(self.preprocessing.model_inputs(x))
        device = next(self.module.parameters()).device
        self.module.eval()
        with torch.no_grad():
            chunks = [self.module(inputs[start : start + PREDICT_CHUNK].to(device)).cpu()
                      for start in range(0, len(inputs), PREDICT_CHUNK)]
        return torch.cat(chunks).numpy() if chunks else np.zeros((0, self.preprocessing.num_outputs), np.float32)

    def predict(self, x: Any) -> np.ndarray:
        """Class names (or indices) for classification, values in the target's units for regression."""
        return self.preprocessing.answers(self.outputs(x))

    def predict_proba(self, x: Any) -> Any:
        """A DataFrame of class probabilities, one column per class name."""
        import pandas as pd
        import torch

        if self.preprocessing.task != "classification":
            raise BadInputError(f"predict_proba is for classification; this model does {self.preprocessing.task}")
        probabilities = torch.softmax(torch.from_numpy(self.outputs(x)), dim=1).numpy()
        return pd.DataFrame(probabilities, columns=self.preprocessing.class_labels())

    def save(self, folder: str | Path) -> Path:
        """Write the bundle to `folder` (made whole in a temporary folder, then renamed in)."""
        from safetensors.torch import save_file

        target = Path(folder).expanduser().resolve()
        if target.exists() and any(target.iterdir()):
            raise BadInputError(f"{target} exists and is not empty; expected a new folder for the bundle")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            weights = {name: tensor.detach().cpu().contiguous() for name, tensor in self.module.state_dict().items()}
            save_file(weights, str(staging / WEIGHTS_FILE))
            description = {
                "format": BUNDLE_FORMAT,
                "model": self.model_name,
                "params": self.model_params,
                "signature": {"input_shape": list(self.preprocessing.input_shape), "task": self.preprocessing.task,
                              "num_outputs": self.preprocessing.num_outputs},
                "trial": self.trial,
                "metrics": self.metrics,
            }
            (staging / MODEL_FILE).write_text(json.dumps(description, indent=1, default=str))
            (staging / PREPROCESSING_FILE).write_text(self.preprocessing.to_json())
            (staging / "README.md").write_text(_readme(description, self.preprocessing))
            if target.exists():
                target.rmdir()
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target


def build_tuned_model(model_name: str, model_params: dict[str, Any], preprocessing: Preprocessing,
                      weights: dict[str, Any], device: str = "cpu", **about: Any) -> TunedModel:
    """The model rebuilt from its declaration and loaded with `weights`, in eval mode."""
    from tunelab_models import build_model, model_signature

    signature = model_signature(model_name, preprocessing.input_shape, preprocessing.task, preprocessing.num_outputs)
    module = build_model(model_name, model_params, signature)
    module.load_state_dict(weights)
    module.to(device).eval()
    return TunedModel(module, preprocessing, model_name, model_params, **about)


def load_model(folder: str | Path, device: str = "cpu") -> TunedModel:
    """A bundle written by `TunedModel.save` / `tunelab export`, ready to predict."""
    from safetensors.torch import load_file

    bundle = Path(folder).expanduser()
    if not (bundle / MODEL_FILE).is_file() or not (bundle / WEIGHTS_FILE).is_file():
        raise BadInputError(f"{bundle} is not a tunelab model bundle; expected {MODEL_FILE} and {WEIGHTS_FILE} in it")
    description = json.loads((bundle / MODEL_FILE).read_text())
    if description.get("format") != BUNDLE_FORMAT:
        raise BadInputError(f"{bundle}: bundle format {description.get('format')!r}; this tunelab reads format {BUNDLE_FORMAT}")
    preprocessing = Preprocessing.from_json((bundle / PREPROCESSING_FILE).read_text())
    weights = load_file(str(bundle / WEIGHTS_FILE))
    return build_tuned_model(description["model"], description["params"], preprocessing, weights, device,
                             trial=description.get("trial", {}), metrics=description.get("metrics", {}))


def _readme(description: dict[str, Any], preprocessing: Preprocessing) -> str:
    trial = description["trial"]
    metrics = "\n".join(f"- {name}: {value:.4g}" for name, value in description["metrics"].items()
                        if isinstance(value, (int, float)))
    classes = f"Classes: {', '.join(preprocessing.class_labels())}.\n" if preprocessing.task == "classification" else ""
    return f"""# {description['model']} from study {trial.get('study', '?')}, trial {trial.get('number', '?')}

A model tuned with tunelab: {preprocessing.task} on {preprocessing.dataset}, inputs of shape
{tuple(preprocessing.input_shape)} per example. {classes}
Weights of the trial's best epoch ({trial.get('best_epoch', '?')}) in `{WEIGHTS_FILE}`; the model's
parameters in `{MODEL_FILE}`; what the study fitted on its training rows (scaling, categories,
class names) in `{PREPROCESSING_FILE}`: raw inputs go in as they came in the data.

```python
import tunelab
model = tunelab.load_model("this-folder")
model.predict(x)          # class names or values
model.predict_proba(x)    # classification: a DataFrame of probabilities
model.module              # the torch.nn.Module
```

or `tunelab predict this-folder INPUT -o predictions.csv`.

Metrics it reached:
{metrics}
"""
