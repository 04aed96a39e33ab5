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
# bound, model bytes x tokens/s over the read bandwidth. airlock's comes
# from build/decode_bound, which reads a buffer of the model's size after
# every generated token, on the same threads (with plain read loops, or
# streamed through the one-token Q8_0 and Q4_0 products, whichever reads
# fastest), so the generation and the
# reading it is held to share the same seconds of a shared host (median
# token against median read pass). llama.cpp's, for comparison only, is
# held to build/membw's sustained reading (the highest median of its
# passes) just before and just after its run, the higher of the two.
# At 2 threads the last column is decode_bound's median cache-line round
# trip between the two threads' cores, taken after every token: on a
# virtual machine it shows where the vCPUs sat (bench/RESULTS.md, session
# 16: about 100 ns on one chiplet, 400-600 ns on two).
# MODELS="qwen2.5-0.5b-Q4_0 ..." limits the run to some of the files.
set -euo pipefail
dir="${1:?model directory}"
reps="${2:-3}"
bench="${LLAMA_BENCH:?set LLAMA_BENCH to the llama-bench binary of llama.cpp}"
airlock="$(dirname "$0")/../build/airlock"
membw="$(dirname "$0")/../build/membw"
bound="$(dirname "$0")/../build/decode_bound"
# sustained read bandwidth in bytes/s at $1 threads
bandwidth() { "$membw" -t "$1" | awk '/sustained/ { print $(NF-4) * 1e9 }'; }
echo "| model | threads | test | llama.cpp t/s | airlock t/s | airlock / llama.cpp | GB/s around llama.cpp | llama.cpp % of bound | airlock t/s beside the reads (median token) | GB/s read beside airlock | airlock % of bound | core-to-core round trip beside airlock, ns |"
echo "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for m in ${MODELS:-llama-3.2-1b-Q4_0 llama-3.2-1b-Q8_0 llama-3.2-1b-Q4_K_M qwen2.5-0.5b-Q4_0 qwen2.5-0.5b-Q8_0 qwen2.5-0.5b-Q4_K_M}; do
  f="$dir/$m.gguf"
  for t in 1 2; do
    for test in "-p 512 -n 0" "-p 0 -n 128"; do
      name=$([ "$test" = "-p 512 -n 0" ] && echo pp512 || echo tg128)
      bw0=0 bw1=0 share="0 0 0 0"
      [ "$name" = tg128 ] && bw0=$(bandwidth "$t")
      # shellcheck disable=SC2086
      ref=$("$bench" -m "$f" $test -t "$t" -r "$reps" -o json 2>/dev/null | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; print(r["avg_ts"], r["stddev_ts"])')
      [ "$name" = tg128 ] && bw1=$(bandwidth "$t")
      # shellcheck disable=SC2086
      mine=$("$airlock" bench -m "$f" $test -t "$t" -r "$reps" --json | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; print(r["avg_ts"], r["stddev_ts"], r["size_bytes"])')
      [ "$name" = tg128 ] && share=$("$bound" -m "$f" -t "$t" -n 128 -r "$reps" --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["median_token_tokens_per_s"], r["read_gb_per_s"], r["share"], r["round_trip_ns"][1])')
      python3 - "$m" "$t" "$name" $ref $mine "$bw0" "$bw1" $share <<'PY'
import sys
m, t, name = sys.argv[1:4]
a, b, c, d, size, bw0, bw1, med_tps, read_gbs, share, rt = map(float, sys.argv[4:15])
row = "| %s | %s | %s | %.2f ± %.2f | %.2f ± %.2f | %.2fx |" % (m, t, name, a, b, c, d, c / a)
if name.startswith("tg"):
    ref_bw = max(bw0, bw1)
    # tokens/s if every weight byte is read once per token at full bandwidth
    row += " %.1f | %.0f%% | %.2f | %.1f | %.0f%% | %s |" % (ref_bw / 1e9, 100 * a * size / ref_bw, med_tps, read_gbs, 100 * share,
                                                       "%.0f" % rt if rt > 0 else "")
else:
    row += " | | | | | |"
print(row)
PY
    done
  done
done
