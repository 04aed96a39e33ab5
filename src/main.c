/* main.c - the airlock binary: dispatch to subcommands. */
#include <stdio.h>
#include <string.h>

#include "tools/commands.h"

#define AIRLOCK_VERSION "0.1.0"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command k_commands[] = {
    {"run", cmd_run, "generate text from a prompt with a GGUF model"},
    {"chat", cmd_chat, "chat interactively with a model, using its chat template"},
    {"inspect", cmd_inspect, "print a GGUF file's metadata and tensor table"},
    {"import", cmd_import, "convert a Hugging Face checkpoint (or llama2.c) to GGUF"},
    {"quantize", cmd_quantize, "convert a model's tensors to a quantized file type (Q4_K_M, Q8_0, ...)"},
    {"perplexity", cmd_perplexity, "measure a model's perplexity over a text (llama.cpp's chunking)"},
    {"kl-divergence", cmd_kl_divergence, "compare a quantized model's next-token distributions with its source's"},
    {"serve", cmd_serve, "serve models over an OpenAI-compatible HTTP API"},
    {"keys", cmd_keys, "create and list API keys for serve"},
    {"bench", cmd_bench, "measure prompt-processing and generation speed (llama-bench's report)"},
    {"synth", cmd_synth, "write a random model at a real model's shape (for tests and benchmarks)"},
    {"tokenize", cmd_tokenize, "turn text into token ids (or ids into text) with a model's tokenizer"},
};

static void usage(FILE *f) {
    fprintf(f, "airlock %s - self-hosted inference that stays inside the building\n\n", AIRLOCK_VERSION);
    fprintf(f, "usage: airlock COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].summary);
    fprintf(f, "  %-10s %s\n", "help", "list commands (airlock COMMAND --help for one)");
    fprintf(f, "  %-10s %s\n", "version", "print the version");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        if (argc >= 3) {
            for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++) {
                if (strcmp(argv[2], k_commands[i].name) == 0) {
                    char *sub[] = {argv[2], "--help", NULL};
                    return k_commands[i].fn(2, sub);
                }
            }
        }
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("airlock %s\n", AIRLOCK_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        if (strcmp(cmd, k_commands[i].name) == 0) return k_commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "airlock: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
