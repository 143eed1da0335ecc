#!/usr/bin/env bash
# Side by side with llama.cpp (issue 17): ExpertScope ÷ llama.cpp speed ratios on the same GGUF files, in interleaved
# pairs. Each pair runs `expertscope bench --arithmetic reference`, then the llama.cpp harness
# (bench/llamacpp-harness), then `expertscope bench --arithmetic fused`, all with the same file, prompt length,
# generated tokens and threads, routing capture on; each ExpertScope run is compared with the llama.cpp run next to it.
# The 1-minute load average (/proc/loadavg) is recorded before every run. Prints a Markdown table of medians and
# ratios (and writes every run's JSON and the exact command lines under --out).
#
# It never builds llama.cpp: pass the harness binary you compiled (see bench/llamacpp-harness/README.md).
# Default rows (5-10 minutes for the two 512 rows on a quiet 2-core machine; each ExpertScope run of the 4096 row runs
# five 4096-token prefills, over 5 minutes, so the whole table takes 20-30 minutes; --long-pairs 0 leaves it out):
#   Q4_K_M mix, 512-token prompt + 32 generated tokens (prefill and generation), --pairs pairs
#   Q8_0,       512-token prompt + 32 generated tokens (prefill and generation), --pairs pairs
#   Q4_K_M mix, 4096-token prompt (prefill at 4096 of context), --long-pairs pairs
# More rows: --row LABEL FILE PROMPT_TOKENS GEN_TOKENS PAIRS (repeatable; e.g. an IQ2_XXS file).
set -euo pipefail

usage() {
    cat >&2 <<'EOF'
usage: bench/compare-llamacpp.sh --harness PATH [--q4km FILE] [--q8 FILE] [--row LABEL FILE PROMPT GEN PAIRS]...
                                 [--pairs 3] [--long-pairs 1] [--long-prompt 4096] [--threads 2] [--repeats 1]
                                 [--run-timeout 1200] [--out DIR] [--expertscope CMD]
  --harness      the compiled llama.cpp harness (bench/llamacpp-harness/harness.cpp)
  --q4km, --q8   files from `expertscope make-model --preset olmoe-1b-7b-4l --type q4_K_M|q8_0`
  --repeats      measured runs inside each program run (each reports its median); pairs give the spread
EOF
    exit 2
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
harness="" q4km="" q8="" pairs=3 long_pairs=1 long_prompt=4096 threads=2 repeats=1 run_timeout=1200 out=""
expertscope="$root/expertscope"
extra_rows=()
while [ $# -gt 0 ]; do
    case "$1" in
        --harness) harness="$2"; shift 2 ;;
        --q4km) q4km="$2"; shift 2 ;;
        --q8) q8="$2"; shift 2 ;;
        --pairs) pairs="$2"; shift 2 ;;
        --long-pairs) long_pairs="$2"; shift 2 ;;
        --long-prompt) long_prompt="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --repeats) repeats="$2"; shift 2 ;;
        --run-timeout) run_timeout="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --expertscope) expertscope="$2"; shift 2 ;;
        --row) [ $# -ge 6 ] || usage; extra_rows+=("$2|$3|$4|$5|$6"); shift 6 ;;
        -h|--help) usage ;;
        *) echo "compare-llamacpp.sh: unknown argument '$1'" >&2; usage ;;
    esac
done
[ -n "$harness" ] || { echo "compare-llamacpp.sh: --harness is required" >&2; usage; }
[ -x "$harness" ] || { echo "compare-llamacpp.sh: harness '$harness' is not an executable file" >&2; exit 2; }
for n in "$pairs" "$long_pairs" "$long_prompt" "$threads" "$repeats" "$run_timeout"; do
    [[ "$n" =~ ^[0-9]+$ ]] || { echo "compare-llamacpp.sh: '$n' is not a non-negative integer" >&2; exit 2; }
done

rows=()
[ -n "$q4km" ] && rows+=("Q4_K_M mix, 512 + 32|$q4km|512|32|$pairs")
[ -n "$q8" ] && rows+=("Q8_0, 512 + 32|$q8|512|32|$pairs")
[ -n "$q4km" ] && [ "$long_pairs" -gt 0 ] && rows+=("Q4_K_M mix, prefill $long_prompt|$q4km|$long_prompt|0|$long_pairs")
rows+=("${extra_rows[@]+"${extra_rows[@]}"}")
[ ${#rows[@]} -gt 0 ] || { echo "compare-llamacpp.sh: no rows (give --q4km, --q8 or --row)" >&2; exit 2; }
for row in "${rows[@]}"; do
    IFS='|' read -r _ file _ _ _ <<<"$row"
    [ -f "$file" ] || { echo "compare-llamacpp.sh: model file '$file' does not exist" >&2; exit 2; }
done

# The launcher builds the CLI when its sources changed: do that now, not inside the first measured run.
"$expertscope" bench --help >/dev/null || { echo "compare-llamacpp.sh: '$expertscope bench --help' failed" >&2; exit 2; }

[ -n "$out" ] || out="$(mktemp -d "${TMPDIR:-/tmp}/compare-llamacpp.XXXXXX")"
mkdir -p "$out"
manifest="$out/manifest.tsv"
: >"$manifest"
started=$SECONDS

load1() { cut -d' ' -f1 /proc/loadavg; }

# run ROW PAIR PROGRAM OUTFILE COMMAND...: runs one program, appends a manifest line (row, pair, program, load before,
# exit status, output file, command line).
run() {
    local row="$1" pair="$2" program="$3" file="$4"; shift 4
    local load status=0
    load="$(load1)"
    timeout "$run_timeout" "$@" >"$file" 2>"$file.log" || status=$?
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$row" "$pair" "$program" "$load" "$status" "$file" "$*" >>"$manifest"
    echo "  [$((SECONDS - started)) s] $program: load $load, exit $status" >&2
}

index=0
for row in "${rows[@]}"; do
    IFS='|' read -r label file prompt gen row_pairs <<<"$row"
    index=$((index + 1))
    echo "row $index: $label ($file, $prompt + $gen tokens, $row_pairs pairs)" >&2
    for pair in $(seq 1 "$row_pairs"); do
        base="$out/r$index-p$pair"
        for program in reference llama.cpp fused; do
            if [ "$program" = llama.cpp ]; then
                run "$label" "$pair" llama.cpp "$base-llamacpp.json" "$harness" --model "$file" --threads "$threads" \
                    --prompt-tokens "$prompt" --gen-tokens "$gen" --repetitions "$repeats" --warmups 1
            else
                run "$label" "$pair" "$program" "$base-$program.json" "$expertscope" bench --model "$file" --threads "$threads" \
                    --prompt-tokens "$prompt" --gen-tokens "$gen" --repeats "$repeats" --capture router \
                    --arithmetic "$program" --json
            fi
        done
    done
done

echo "all runs: $((SECONDS - started)) s; files under $out" >&2
python3 - "$manifest" "$((SECONDS - started))" <<'PY'
import json, statistics, sys
from collections import OrderedDict

manifest, elapsed = sys.argv[1], sys.argv[2]
runs = OrderedDict()  # row -> pair -> program -> record
for line in open(manifest, encoding="utf-8"):
    row, pair, program, load, status, path, command = line.rstrip("\n").split("\t")
    record = {"load": float(load), "status": int(status), "command": command, "result": None}
    if record["status"] == 0:
        text = [l for l in open(path, encoding="utf-8").read().splitlines() if l.strip()]
        # ExpertScope prints one JSON object; the harness one line per repetition, then its summary.
        record["result"] = json.loads("\n".join(text)) if program != "llama.cpp" else json.loads(text[-1])
    runs.setdefault(row, OrderedDict()).setdefault(pair, {})[program] = record

def speed(record, phase):
    return None if record is None or record["result"] is None else record["result"][phase + "_tokens_per_s"]

def fmt(x, digits=1):
    return "—" if x is None else f"{x:.{digits}f}"

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

print("| row | phase | reference ÷ llama.cpp | fused ÷ llama.cpp | t/s reference / fused / llama.cpp (medians) | load avg (1 min) | pairs |")
print("| --- | --- | --- | --- | --- | --- | --- |")
details = []
for row, pairs in runs.items():
    loads = [r["load"] for p in pairs.values() for r in p.values()]
    failed = [f"{prog} pair {n} (exit {r['status']})" for n, p in pairs.items() for prog, r in p.items() if r["status"] != 0]
    phases = ["prefill"] + (["generation"] if any(
        (r["result"] or {}).get("gen_tokens", 0) > 0 for p in pairs.values() for r in p.values()) else [])
    for phase in phases:
        ratios = {"reference": [], "fused": []}
        speeds = {"reference": [], "fused": [], "llama.cpp": []}
        for n, p in pairs.items():
            llama = speed(p.get("llama.cpp"), phase)
            speeds["llama.cpp"].append(llama)
            cells = [f"{row}", phase, n]
            for arithmetic in ("reference", "fused"):
                ours = speed(p.get(arithmetic), phase)
                speeds[arithmetic].append(ours)
                ratio = ours / llama if ours and llama else None
                ratios[arithmetic].append(ratio)
                cells.append(f"{fmt(ours)} / {fmt(llama)} = {fmt(ratio, 2)}")
            cells.append(", ".join(f"{p[prog]['load']:.2f}" for prog in ("reference", "llama.cpp", "fused") if prog in p))
            details.append(cells)
        ref_ratios = [r for r in ratios["reference"] if r is not None]
        fused_ratios = [r for r in ratios["fused"] if r is not None]
        def ratio_cell(values):
            if not values:
                return "failed"
            return f"**{statistics.median(values):.2f}**" + (f" ({min(values):.2f}–{max(values):.2f})" if len(values) > 1 else "")
        print(f"| {row} | {phase} | {ratio_cell(ref_ratios)} | {ratio_cell(fused_ratios)} | "
              f"{fmt(med(speeds['reference']))} / {fmt(med(speeds['fused']))} / {fmt(med(speeds['llama.cpp']))} | "
              f"{min(loads):.2f}–{max(loads):.2f} | {len(pairs)}" + (f"; failed: {', '.join(failed)}" if failed else "") + " |")

print()
print("Each pair: ExpertScope reference, then llama.cpp, then ExpertScope fused (t/s ExpertScope / llama.cpp = ratio); "
      "load average before each of the three runs.")
print()
print("| row | phase | pair | reference | fused | load avg before (ref, llama.cpp, fused) |")
print("| --- | --- | --- | --- | --- | --- |")
for cells in details:
    print("| " + " | ".join(cells) + " |")
print()
print(f"Commands (one pair of each row; {elapsed} s for all runs):")
print()
print("```")
for row, pairs in runs.items():
    first = next(iter(pairs.values()))
    for prog in ("reference", "llama.cpp", "fused"):
        if prog in first:
            print(first[prog]["command"])
print("```")
PY
