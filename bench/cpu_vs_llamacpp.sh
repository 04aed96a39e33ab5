#!/usr/bin/env bash
# cpu_vs_llamacpp.sh - airlock bench and llama.cpp's llama-bench, side by side
# in one run, on the same synthetic models (bench/RESULTS.md, "CPU speed").
#
# usage: LLAMA_BENCH=/path/to/llama-bench bench/cpu_vs_llamacpp.sh MODELDIR [REPS]
# MODELDIR holds llama-3.2-1b-{Q4_0,Q8_0,Q4_K_M}.gguf and
# qwen2.5-0.5b-{Q4_0,Q8_0,Q4_K_M}.gguf, written by:
#   for s in llama-3.2-1b qwen2.5-0.5b; do for t in Q4_0 Q8_0 Q4_K_M; do
#     build/airlock synth --shape $s --vocab ../shared/models/tokenizer-fixtures/ggml-vocab-gpt-2.gguf \
#       --type $t -o MODELDIR/$s-$t.gguf; done; done
# llama.cpp is built beside the project (never inside it) with its default
# native CPU flags: cmake -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build.
# Prints one markdown row per model, thread count and test with both speeds
# and their ratio. Runs the two engines alternately, test by test. For the
# generation tests it also prints each engine's share of the memory-bandwidth
# bound: model bytes x tokens/s over the read bandwidth build/membw measures
# at the same thread count just before and just after that engine's own run
# (readings before llama.cpp, between the two and after airlock; each
# engine gets the higher of the two around it, so a share is not flattered
# by a slow moment, and a reading half a minute away from a run, while the
# other engine ran, does not stand in for the bandwidth during it). The
# bound is membw's sustained figure (the highest median of its passes: a
# run of seconds is held to what the memory gave for seconds); the last
# column holds airlock against membw's best single pass as well, the
# stricter figure on a shared host whose passes jump when a neighbour
# falls idle.
# MODELS="qwen2.5-0.5b-Q4_0 ..." limits the run to some of the files.
set -euo pipefail
dir="${1:?model directory}"
reps="${2:-3}"
bench="${LLAMA_BENCH:?set LLAMA_BENCH to the llama-bench binary of llama.cpp}"
airlock="$(dirname "$0")/../build/airlock"
membw="$(dirname "$0")/../build/membw"
# read bandwidth in bytes/s at $1 threads: "sustained,best-single-pass"
bandwidth() { "$membw" -t "$1" | awk '/best of all/ { b = $(NF-4) * 1e9 } /sustained/ { s = $(NF-4) * 1e9 } END { print s "," b }'; }
echo "| model | threads | test | llama.cpp t/s | airlock t/s | airlock / llama.cpp | GB/s sustained (around llama.cpp / airlock) | llama.cpp % of bound | airlock % of bound | airlock % of best single pass |"
echo "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for m in ${MODELS:-llama-3.2-1b-Q4_0 llama-3.2-1b-Q8_0 llama-3.2-1b-Q4_K_M qwen2.5-0.5b-Q4_0 qwen2.5-0.5b-Q8_0 qwen2.5-0.5b-Q4_K_M}; do
  f="$dir/$m.gguf"
  for t in 1 2; do
    for test in "-p 512 -n 0" "-p 0 -n 128"; do
      name=$([ "$test" = "-p 512 -n 0" ] && echo pp512 || echo tg128)
      bw0=0,0 bw1=0,0 bw2=0,0
      [ "$name" = tg128 ] && bw0=$(bandwidth "$t")
      # shellcheck disable=SC2086
      ref=$("$bench" -m "$f" $test -t "$t" -r "$reps" -o json 2>/dev/null | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; print(r["avg_ts"], r["stddev_ts"])')
      [ "$name" = tg128 ] && bw1=$(bandwidth "$t")
      # shellcheck disable=SC2086
      mine=$("$airlock" bench -m "$f" $test -t "$t" -r "$reps" --json | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; print(r["avg_ts"], r["stddev_ts"], r["size_bytes"])')
      [ "$name" = tg128 ] && bw2=$(bandwidth "$t")
      python3 - "$m" "$t" "$name" $ref $mine "$bw0" "$bw1" "$bw2" <<'PY'
import sys
m, t, name = sys.argv[1:4]
a, b, c, d, size = map(float, sys.argv[4:9])
bw0, bw1, bw2 = ([float(v) for v in x.split(",")] for x in sys.argv[9:12])  # (sustained, best pass)
row = "| %s | %s | %s | %.2f ± %.2f | %.2f ± %.2f | %.2fx |" % (m, t, name, a, b, c, d, c / a)
if name.startswith("tg"):
    ref_bw, mine_bw = max(bw0[0], bw1[0]), max(bw1[0], bw2[0])
    mine_best = max(bw1[1], bw2[1])
    # tokens/s if every weight byte is read once per token at full bandwidth
    row += " %.1f / %.1f | %.0f%% | %.0f%% | %.0f%% |" % (ref_bw / 1e9, mine_bw / 1e9, 100 * a * size / ref_bw,
                                                    100 * c * size / mine_bw, 100 * c * size / mine_best)
else:
    row += " | | | |"
print(row)
PY
    done
  done
done
