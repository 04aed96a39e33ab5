/* cmd_synth.c - `airlock synth`: a random model at a real model's shape. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/quant_mix.h"
#include "models/synth.h"
#include "tools/commands.h"

static void help(void) {
    printf("usage: airlock synth --shape NAME --vocab VOCAB.gguf --type TYPE -o OUT.gguf [options]\n\n"
           "Writes a GGUF model with seeded random weights at the exact shape of a real\n"
           "model and the real vocabulary of VOCAB.gguf, for testing and benchmarking\n"
           "(speed does not depend on weight values).\n\n"
           "  --shape NAME     model shape (--list-shapes to see them)\n"
           "  --vocab FILE     GGUF whose tokenizer to use (padded with unused tokens to the shape's vocabulary)\n"
           "  --type TYPE      %s\n"
           "  -o FILE          output file (written atomically)\n"
           "  --seed N         random seed (default 1)\n"
           "  --layers N       use N layers instead of the shape's (smaller test models)\n"
           "  --pure           every matrix in TYPE's base type (no higher-precision tensors)\n"
           "  -t, --threads N  worker threads (default: all cores)\n"
           "  --list-shapes    print the known shapes\n",
           quant_mix_names());
}

int cmd_synth(int argc, char **argv) {
    enum { O_SHAPE = 256, O_VOCAB, O_TYPE, O_SEED, O_LAYERS, O_LIST, O_PURE };
    static const struct option opts[] = {
        {"shape", required_argument, 0, O_SHAPE}, {"vocab", required_argument, 0, O_VOCAB}, {"type", required_argument, 0, O_TYPE},
        {"output", required_argument, 0, 'o'}, {"seed", required_argument, 0, O_SEED}, {"layers", required_argument, 0, O_LAYERS},
        {"threads", required_argument, 0, 't'}, {"list-shapes", no_argument, 0, O_LIST}, {"pure", no_argument, 0, O_PURE}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    synth_params p = {.type = "Q4_K_M", .seed = 1, .progress = true};
    const char *shape = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:t:h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case O_SHAPE: shape = optarg; break;
        case O_VOCAB: p.vocab_path = optarg; break;
        case O_TYPE: p.type = optarg; break;
        case 'o': p.out_path = optarg; break;
        case O_SEED:
            errno = 0;
            p.seed = strtoull(optarg, &end, 10);
            if (errno || *end) { fprintf(stderr, "airlock synth: bad --seed '%s'\n", optarg); return 2; }
            break;
        case O_LAYERS:
            p.n_layer_override = atoi(optarg);
            if (p.n_layer_override <= 0 || p.n_layer_override > 1024) { fprintf(stderr, "airlock synth: bad --layers '%s'\n", optarg); return 2; }
            break;
        case 't': p.threads = atoi(optarg); break;
        case O_LIST: synth_print_shapes(); return 0;
        case O_PURE: p.pure = true; break;
        case 'h': help(); return 0;
        default: return 2;
        }
    }
    if (!shape || !p.vocab_path || !p.out_path || optind != argc) {
        fprintf(stderr, "airlock synth: need --shape, --vocab and -o (see --help)\n");
        return 2;
    }
    p.shape = synth_find_shape(shape);
    if (!p.shape) {
        fprintf(stderr, "airlock synth: unknown shape '%s'; known shapes:\n", shape);
        synth_print_shapes();
        return 2;
    }
    al_err err;
    if (synth_write(&p, &err)) {
        fprintf(stderr, "\nairlock synth: %s\n", err.msg);
        return 1;
    }
    return 0;
}
