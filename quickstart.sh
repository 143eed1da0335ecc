#!/usr/bin/env bash
# Fresh machine to first result: installs what ExpertScope needs and runs the main job on the built-in model, a
# small MoE with trained routing (models/README.md). Outputs go to ./out (ignored by git).
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
# The built-in model: a 4.5M-parameter OLMoE trained on public text, so its routing is learned (models/README.md:
# source, license, and why it says nothing about semantic routing in large models). Pass another GGUF as $1.
model="${1:-models/olmoe-tiny-trained-q8_0.gguf}"
./expertscope inspect "$model"
./expertscope tokenize --model "$model" --text "The bank by the river bank was closed."
# The main job: does the model route one word to the same experts when its sense is the same (WordNet example
# sentences)? A model this small mostly routes by token; the report's controls separate that from sense.
./expertscope probe word-sense --model "$model" --dataset wordnet --limit 200 --seed 1 --out out/word-sense
echo "Report: out/word-sense/report.html (results.json, pairs.csv and the routing trace beside it)"
