"""Packages: the champion as a self-describing, checksummed folder.

manifest.py  the layout's file names, MANIFEST read/write, checksums, the one verified reader
             (light: the server imports it without pandas, sklearn or mlflow)
contents.py  model config, deployment config, environment and reference statistics (pure)
build.py     `heartml package`: the registry's version -> a package folder
verify.py    `heartml package verify`: every format against the sklearn pipeline
"""
