#!/usr/bin/env bash
# quant_table.sh - the table of docs/QUANTIZATION.md: for one model, each
# quantization type's size, bits per weight, KL-divergence from the F16
# model over a text, and generation speed.
#
# usage: bench/quant_table.sh WORKDIR [SHAPE] [THREADS]
# Writes WORKDIR/SHAPE-F16.gguf with `airlock synth` (seeded random weights at
# the real shape; default llama-3.2-1b, vocabulary of the GPT-2 fixture),
# quantizes it to every type with `airlock quantize`, saves the F16 model's
# logits over the text once (`airlock perplexity --save-logits`, 512-token
# chunks as llama.cpp, the first CHUNKS=3 of them) and compares each type against them with
# `airlock kl-divergence --base-logits`; speed is `airlock bench -p 0 -n 64`.
# The text is the tokenizer fixtures' test strings and the stories260K golden
# outputs from ../shared/models, so the run is reproducible anywhere.
set -euo pipefail
work="${1:?work directory}"
shape="${2:-llama-3.2-1b}"
threads="${3:-2}"
root="$(cd "$(dirname "$0")/.." && pwd)"
airlock="$root/build/airlock"
models="${AIRLOCK_MODELS_DIR:-$root/../shared/models}"
mkdir -p "$work"
text="$work/kl-text.txt"
cat "$models"/tokenizer-fixtures/*.inp "$models"/llm/*.txt > "$text"
base="$work/$shape-F16.gguf"
[ -f "$base" ] || "$airlock" synth --shape "$shape" --vocab "$models/tokenizer-fixtures/ggml-vocab-gpt-2.gguf" --type F16 -o "$base" >&2
[ -f "$work/base.logits" ] || "$airlock" perplexity -m "$base" -f "$text" -c 512 --chunks "${CHUNKS:-3}" -t "$threads" --save-logits "$work/base.logits" >&2
speed() { "$airlock" bench -m "$1" -p 0 -n 64 -t "$threads" -r 2 --json | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; print("%.2f ± %.2f" % (r["avg_ts"], r["stddev_ts"]))'; }
echo "| type | size (MiB) | bits/weight | mean KLD vs F16 | 99% KLD | same top token | PPL ratio | tg64 t/s ($threads threads) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
echo "| F16 | $(python3 -c "import os; print('%.0f' % (os.path.getsize('$base') / 1048576))") | 16.00 | 0 | 0 | 100% | 1.0000 | $(speed "$base") |"
for t in Q8_0 Q6_K Q5_K_M Q5_K_S Q5_1 Q5_0 Q4_K_M Q4_K_S Q4_1 Q4_0 Q3_K_M Q2_K; do
  q="$work/$shape-$t.gguf"
  bpw=$("$airlock" quantize -t "$threads" "$base" "$q" "$t" 2>&1 | sed -n 's/.*(\([0-9.]*\) bits per weight.*/\1/p')
  kl=$("$airlock" kl-divergence -m "$q" --base-logits "$work/base.logits" -t "$threads" --json)
  python3 - "$t" "$q" "$bpw" "$kl" "$(speed "$q")" <<'PY'
import json, os, sys
t, q, bpw, kl, sp = sys.argv[1:6]
r = json.loads(kl)
print("| %s | %.0f | %s | %.5f ± %.5f | %.4f | %.1f%% | %.4f | %s |" % (t, os.path.getsize(q) / 1048576, bpw, r["kld_mean"], r["kld_stderr"],
      r["kld_p99"], 100 * r["same_top"], r["ppl"] / r["ppl_base"], sp))
PY
  rm -f "$q"
done
