#!/usr/bin/env bash
# bench/tokenizer.sh - tokenizer throughput, airlock vs llama.cpp, side by side.
#
# usage: LLAMA_TOKENIZE=/path/to/llama-tokenize bench/tokenizer.sh [MODELS_DIR]
#
# Builds two ~3 MB corpora from files every Debian system has (English: the
# license texts and package copyright files; code: the C headers in
# /usr/include), then for each vocabulary times `airlock tokenize --ids -f`
# and `llama-tokenize --ids -f` on each corpus (best of 3, minus the time of
# the same command on an empty file, i.e. minus model load), checks that both
# produce the same ids, and prints a Markdown table of tokens/s and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS="${1:-../shared/models}"
LLAMA="${LLAMA_TOKENIZE:?set LLAMA_TOKENIZE to a llama-tokenize binary}"
AIRLOCK=./build/airlock
[ -x "$AIRLOCK" ] || ./scripts/build.sh >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cat /usr/share/common-licenses/* ; find /usr/share/doc -name copyright | sort | xargs cat) 2>/dev/null \
  | LC_ALL=C tr -d "\\000" | head -c 3000000 > "$work/english.txt" || true
find /usr/include -name '*.h' | sort | xargs cat 2>/dev/null | head -c 3000000 > "$work/code.txt" || true
: > "$work/empty.txt"

# best-of-3 wall time of a command, in seconds
best3() {
  local best=999999 s e t
  for _ in 1 2 3; do
    s=$(date +%s%N); "$@" > "$work/out" 2>/dev/null; e=$(date +%s%N)
    t=$(( (e - s) / 1000 )); [ "$t" -lt "$best" ] && best=$t
  done
  echo "$best"   # microseconds
}

echo "| vocabulary | corpus | MB | tokens | airlock tok/s | llama.cpp tok/s | ratio | same ids |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for v in llama-spm gpt-2 deepseek-llm bert-bge; do
  m="$MODELS/tokenizer-fixtures/ggml-vocab-$v.gguf"
  a0=$(best3 "$AIRLOCK" tokenize -m "$m" --ids --no-special -f "$work/empty.txt")
  l0=$(best3 "$LLAMA" -m "$m" --ids --no-bos --no-escape --no-parse-special --log-disable -f "$work/empty.txt")
  for c in english code; do
    f="$work/$c.txt"
    a=$(best3 "$AIRLOCK" tokenize -m "$m" --ids --no-special -f "$f")
    "$AIRLOCK" tokenize -m "$m" --ids --no-special -f "$f" | tr ' ' '\n' | grep -v '^$' > "$work/a.ids"
    l=$(best3 "$LLAMA" -m "$m" --ids --no-bos --no-escape --no-parse-special --log-disable -f "$f")
    "$LLAMA" -m "$m" --ids --no-bos --no-escape --no-parse-special --log-disable -f "$f" 2>/dev/null \
      | tr -d '[],' | tr ' ' '\n' | grep -v '^$' > "$work/l.ids"
    n=$(wc -l < "$work/a.ids")
    same=no; cmp -s "$work/a.ids" "$work/l.ids" && same=yes
    awk -v v="$v" -v c="$c" -v n="$n" -v a="$a" -v a0="$a0" -v l="$l" -v l0="$l0" -v same="$same" -v bytes="$(wc -c < "$f")" 'BEGIN {
      ta = (a - a0) / 1e6; tl = (l - l0) / 1e6; if (ta <= 0) ta = 1e-6; if (tl <= 0) tl = 1e-6;
      printf "| %s | %s | %.1f | %d | %.0f | %.0f | %.2f | %s |\n", v, c, bytes / 1e6, n, n / ta, n / tl, tl / ta, same }'
  done
done
