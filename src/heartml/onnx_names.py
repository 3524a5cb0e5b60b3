"""The names in a heartml ONNX graph: the contract between heartml.onnx_export (which writes
them) and heartml.onnx_runtime (which reads them).

A module of its own, without onnxruntime, so that the prediction service can name the graph's
tensors (the Open Inference Protocol's metadata and outputs) before a model is loaded.
"""

INPUT_NAME = "input"
LABEL_OUTPUT = "label"
PROBABILITIES_OUTPUT = "probabilities"
INPUT_COLUMNS_KEY = "heartml.input_columns"  # metadata_props entry: comma-separated column order
