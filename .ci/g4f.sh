#!/usr/bin/env bash
# CI step after .ci/run: GPROChat (langchain_gprochat.g4f) inside gpt4free's own client.
# gpt4free is no dependency of the package, so it gets a virtual environment of its own
# (.ci/_g4f-venv, ignored by git), with the g4f release that last shipped the original
# provider; tests/g4f_env is not collected by the main run and fails without g4f.
set -euo pipefail
cd "$(dirname "$0")/.."
G4F_VERSION="6.7.1"
VENV=".ci/_g4f-venv"
python -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "g4f==$G4F_VERSION" -e . \
    "pytest>=8" "pytest-asyncio>=0.23" "pytest-timeout>=2.3" "hypothesis>=6.100"
"$VENV/bin/python" -m pytest tests/g4f_env "$@"
