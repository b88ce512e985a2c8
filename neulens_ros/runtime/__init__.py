"""neulens_ros.runtime: the backends that run the detector's per-level fronts."""

# 'auto' picks TensorRT where it is installed with a GPU, else eager PyTorch.
BACKENDS = ('auto', 'torch', 'torchscript', 'onnxruntime', 'tensorrt')
