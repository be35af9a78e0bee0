"""Typed params: the dataclasses (params), the JSON schema made from them (schema), and the
loading of params.yaml (load, with its YAML 1.2 reader yaml12)."""
