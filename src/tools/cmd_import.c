/* cmd_import.c - `airlock import`: bring a checkpoint in another format to GGUF. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "formats/llama2c.h"
#include "tools/commands.h"

static void help(void) {
    printf("usage: airlock import CHECKPOINT.bin --tokenizer TOKENIZER.bin -o OUT.gguf\n\n"
           "Converts a llama2.c checkpoint and its tokenizer.bin into a GGUF file\n"
           "(architecture llama, F32 tensors) that airlock and other GGUF runtimes load.\n\n"
           "  -t, --tokenizer FILE  the llama2.c tokenizer (e.g. tok512.bin, tokenizer.bin)\n"
           "  -o, --output FILE     the GGUF to write (written atomically)\n");
}

int cmd_import(int argc, char **argv) {
    static const struct option opts[] = {{"tokenizer", required_argument, 0, 't'}, {"output", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *tok = NULL, *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': tok = optarg; break;
        case 'o': out = optarg; break;
        case 'h': help(); return 0;
        default: return 2;
        }
    }
    if (optind != argc - 1 || !tok || !out) {
        fprintf(stderr, "usage: airlock import CHECKPOINT.bin --tokenizer TOKENIZER.bin -o OUT.gguf\n");
        return 2;
    }
    al_err err;
    if (llama2c_convert(argv[optind], tok, out, &err)) {
        fprintf(stderr, "airlock import: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "airlock import: wrote %s\n", out);
    return 0;
}
