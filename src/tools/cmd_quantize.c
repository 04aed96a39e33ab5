/* cmd_quantize.c - `airlock quantize`: give a model the tensor types of a file type. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "formats/ggml_types.h"
#include "models/quant_mix.h"
#include "models/quantize_model.h"
#include "tools/cli_util.h"
#include "tools/commands.h"

static void help(void) {
    printf("usage: airlock quantize IN.gguf OUT.gguf TYPE [options]\n\n"
           "Writes OUT.gguf with the tensors of IN.gguf converted to TYPE, one of\n"
           "  %s\n"
           "Mixed types (*_S, *_M, *_L) keep the tensors that matter most at higher\n"
           "precision (output/embedding, attn_v and ffn_down on some layers); see\n"
           "docs/QUANTIZATION.md for each type's size and quality. Norms stay F32.\n"
           "Tensors are converted one at a time (memory ~ one tensor) on all cores;\n"
           "OUT.gguf appears only when complete.\n\n"
           "  -t, --threads N       worker threads (default: all cores)\n"
           "  --allow-requantize    accept an already-quantized input (its error compounds)\n"
           "  --pure                every matrix in TYPE's base type (no mix rules)\n"
           "  -q, --quiet           no progress bar or summary\n",
           quant_mix_names());
}

int cmd_quantize(int argc, char **argv) {
    enum { O_REQ = 256, O_PURE };
    static const struct option opts[] = {{"threads", required_argument, 0, 't'}, {"allow-requantize", no_argument, 0, O_REQ},
                                         {"pure", no_argument, 0, O_PURE}, {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    quantize_params p = {.progress = true};
    long threads = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:qh", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (cli_parse_int("quantize", optarg, "--threads", 1, 1024, &threads)) return 2;
            break;
        case O_REQ: p.allow_requantize = true; break;
        case O_PURE: p.pure = true; break;
        case 'q': p.progress = false; break;
        case 'h': help(); return 0;
        default: return 2;
        }
    }
    if (optind != argc - 3) {
        fprintf(stderr, "usage: airlock quantize IN.gguf OUT.gguf TYPE [options] (see --help)\n");
        return 2;
    }
    p.in_path = argv[optind];
    p.out_path = argv[optind + 1];
    p.type = argv[optind + 2];
    p.threads = (int)threads;
    if (!quant_mix_find(p.type)) {
        fprintf(stderr, "airlock quantize: unknown type '%s' (known: %s)\n", p.type, quant_mix_names());
        return 2;
    }
    if (strcmp(p.in_path, p.out_path) == 0) {
        fprintf(stderr, "airlock quantize: input and output are the same file\n");
        return 2;
    }
    cli_remove_tmp_on_signal(p.out_path);
    quantize_result r;
    al_err err;
    if (quantize_model(&p, &r, &err)) {
        fprintf(stderr, "\nairlock quantize: %s\n", err.msg);
        return 1;
    }
    if (p.progress) {
        double bpw = r.n_elems ? 8.0 * (double)r.out_bytes / (double)r.n_elems : 0;
        fprintf(stderr, "quantize: %s -> %s (%s)\n", p.in_path, p.out_path, quant_mix_find(p.type)->name);
        fprintf(stderr, "quantize: %llu tensors, %.2f M weights: %.1f MiB -> %.1f MiB (%.2f bits per weight, %.1f%% of the input) in %.1f s\n",
                (unsigned long long)r.n_tensors, (double)r.n_elems / 1e6, (double)r.in_bytes / 1048576.0,
                (double)r.out_bytes / 1048576.0, bpw, r.in_bytes ? 100.0 * (double)r.out_bytes / (double)r.in_bytes : 0,
                r.seconds);
        fprintf(stderr, "quantize: tensor types:");
        for (unsigned t = 0; t < sizeof r.by_type / sizeof r.by_type[0]; t++)
            if (r.by_type[t]) fprintf(stderr, " %s x%llu", ggml_type_name(t), (unsigned long long)r.by_type[t]);
        fputc('\n', stderr);
    }
    return 0;
}
