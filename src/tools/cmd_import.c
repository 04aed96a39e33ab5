/* cmd_import.c - `airlock import`: bring a checkpoint in another format to GGUF. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/llama2c.h"
#include "models/hf_import.h"
#include "models/quant_mix.h"
#include "tools/cli_util.h"
#include "tools/commands.h"

static void help(void) {
    printf("usage: airlock import DIR -o OUT.gguf [--type TYPE]\n"
           "       airlock import CHECKPOINT.bin --tokenizer TOKENIZER.bin -o OUT.gguf\n\n"
           "Converts a Hugging Face checkpoint directory (config.json, model.safetensors\n"
           "or its shards with model.safetensors.index.json, tokenizer.json,\n"
           "tokenizer_config.json, generation_config.json) of a Llama, Mistral, Qwen2\n"
           "or Qwen3 model, F32/F16/BF16, into a GGUF file that airlock and other GGUF\n"
           "runtimes load, with the full tokenizer and chat template. No Python needed.\n"
           "A llama2.c checkpoint (with its tokenizer.bin) is converted too.\n\n"
           "  -o, --output FILE     the GGUF to write (appears only when complete)\n"
           "  --type TYPE           tensor types: %s\n"
           "                        (default: keep the checkpoint's precision)\n"
           "  --pre NAME            pre-tokenizer name, when it cannot be detected\n"
           "  --name NAME           general.name (default: the directory's name)\n"
           "  -t, --threads N       worker threads (default: all cores)\n"
           "  --tokenizer FILE      the llama2.c tokenizer (llama2.c checkpoints only)\n"
           "  -q, --quiet           no progress bar or summary\n",
           quant_mix_names());
}

int cmd_import(int argc, char **argv) {
    enum { O_TYPE = 256, O_PRE, O_NAME };
    static const struct option opts[] = {{"tokenizer", required_argument, 0, 'k'}, {"output", required_argument, 0, 'o'},
                                         {"type", required_argument, 0, O_TYPE},   {"pre", required_argument, 0, O_PRE},
                                         {"name", required_argument, 0, O_NAME},   {"threads", required_argument, 0, 't'},
                                         {"quiet", no_argument, 0, 'q'},           {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *tok = NULL;
    hf_import_params p = {.progress = true};
    long threads = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:o:t:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'k': tok = optarg; break;
        case 'o': p.out_path = optarg; break;
        case O_TYPE: p.type = optarg; break;
        case O_PRE: p.pre = optarg; break;
        case O_NAME: p.name = optarg; break;
        case 't':
            if (cli_parse_int("import", optarg, "--threads", 1, 1024, &threads)) return 2;
            break;
        case 'q': p.progress = false; break;
        case 'h': help(); return 0;
        default: return 2;
        }
    }
    if (optind != argc - 1 || !p.out_path) {
        fprintf(stderr, "usage: airlock import DIR -o OUT.gguf [--type TYPE] (see --help)\n");
        return 2;
    }
    p.dir = argv[optind];
    p.threads = (int)threads;
    struct stat st;
    if (stat(p.dir, &st) != 0) {
        fprintf(stderr, "airlock import: %s: no such file or directory\n", p.dir);
        return 1;
    }
    cli_remove_tmp_on_signal(p.out_path);
    al_err err;
    if (!S_ISDIR(st.st_mode)) {
        if (!tok) {
            fprintf(stderr, "airlock import: %s is a file: a llama2.c checkpoint needs --tokenizer (a Hugging Face checkpoint is a directory)\n", p.dir);
            return 2;
        }
        if (llama2c_convert(p.dir, tok, p.out_path, &err)) {
            fprintf(stderr, "airlock import: %s\n", err.msg);
            return 1;
        }
        fprintf(stderr, "airlock import: wrote %s\n", p.out_path);
        return 0;
    }
    if (p.type && !quant_mix_find(p.type)) {
        fprintf(stderr, "airlock import: unknown type '%s' (known: %s)\n", p.type, quant_mix_names());
        return 2;
    }
    hf_import_result r;
    if (hf_import(&p, &r, &err)) {
        fprintf(stderr, "\nairlock import: %s\n", err.msg);
        return 1;
    }
    if (p.progress)
        fprintf(stderr, "import: wrote %s: %s, %d layers, vocab %d, %d tensors, %.2f M weights, %.1f MiB (%.2f bits per weight) in %.1f s\n",
                p.out_path, r.arch, r.n_layer, r.n_vocab, r.n_tensors, (double)r.stats.n_elems / 1e6,
                (double)r.stats.bytes_out / 1048576.0, r.stats.n_elems ? 8.0 * (double)r.stats.bytes_out / (double)r.stats.n_elems : 0,
                r.stats.seconds);
    return 0;
}
