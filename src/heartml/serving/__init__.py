"""The prediction service: FastAPI on a verified ONNX package (`heartml serve`).

Importing this package does nothing; `heartml.serving.app.create_app` builds the application.
"""
