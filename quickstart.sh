#!/usr/bin/env bash
# Fresh machine to first result: installs what ExpertScope needs, writes a small random-weight model with the
# project's own GGUF writer, and runs the main job on it. Outputs go to ./out (ignored by git).
set -euo pipefail
cd "$(dirname "$0")"

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v dotnet >/dev/null 2>&1; then
  echo "The .NET 10 SDK is required (https://dot.net); install it and run this again." >&2
  exit 1
fi
# WordNet 3.0 (Debian packages): the word-sense and substitution probes read it from /usr/share/wordnet.
if [ ! -f /usr/share/wordnet/data.noun ] || [ ! -f /usr/share/wordnet/index.sense ]; then
  # Waits up to two minutes for another apt run's lock instead of failing; installs only what is named.
  sudo_if_needed apt-get -o DPkg::Lock::Timeout=120 update -qq
  sudo_if_needed apt-get install -y -qq -o DPkg::Lock::Timeout=120 --no-install-recommends wordnet-base wordnet-sense-index
fi

mkdir -p out
model=out/tiny-olmoe.gguf
./expertscope make-model --preset tiny-olmoe --out "$model"
./expertscope inspect "$model"
./expertscope tokenize --model "$model" --text "The bank by the river bank was closed."
# The main job: does the model route one word to the same experts when its sense is the same (WordNet example
# sentences)? On this random-weight model the answer carries no meaning; the report says so.
./expertscope probe word-sense --model "$model" --dataset wordnet --limit 200 --seed 1 --out out/word-sense
echo "Report: out/word-sense/report.html (results.json, pairs.csv and the routing trace beside it)"
