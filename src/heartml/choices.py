"""The closed sets a user chooses from (on the command line, in the config, in settings), each
declared once as a Literal with its tuple of values. Light: the CLI reads these at start."""

from __future__ import annotations

from typing import Literal, get_args

Algorithm = Literal["random_forest", "logistic_regression", "gradient_boosting", "svm"]
ALGORITHMS: tuple[str, ...] = get_args(Algorithm)

Engine = Literal["local", "dask"]  # batch scoring: in this process, or on Dask workers
ENGINES: tuple[str, ...] = get_args(Engine)

Loop = Literal["auto", "uvloop", "asyncio"]  # uvicorn's event loop ("auto": uvloop if installed)
LOOPS: tuple[str, ...] = get_args(Loop)

HttpParser = Literal["auto", "httptools", "h11"]  # uvicorn's HTTP parser
HTTP_PARSERS: tuple[str, ...] = get_args(HttpParser)
