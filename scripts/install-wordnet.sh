#!/usr/bin/env bash
# Install WordNet 3.0 from Debian's packages (wordnet-base, wordnet-sense-index).
# sessionflow builds an nltk-readable copy of /usr/share/wordnet on first use.
set -euo pipefail
packages=(wordnet-base wordnet-sense-index)
if ! command -v apt-get >/dev/null; then
  echo "WordNet 3.0 is missing and apt-get is not available." >&2
  echo "Run: .venv/bin/python -c 'import nltk; nltk.download(\"wordnet\")'" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y --no-install-recommends "${packages[@]}" \
  || { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends "${packages[@]}"; }
