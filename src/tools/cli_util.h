/* cli_util.h - argument parsing helpers shared by the subcommands. */
#ifndef AIRLOCK_TOOLS_CLI_UTIL_H
#define AIRLOCK_TOOLS_CLI_UTIL_H

#include <stdbool.h>

#include "models/llm.h"
#include "models/sampler.h"

/* Parse a whole-string integer / number within [lo, hi]; on error print
 * "airlock CMD: NAME must be ..." and return -1. */
int cli_parse_int(const char *cmd, const char *s, const char *name, long lo, long hi, long *out);
int cli_parse_float(const char *cmd, const char *s, const char *name, float lo, float hi, float *out);
/* Parse a --kv-type value ("f16" or "f32"); on error print why and return -1. */
int cli_parse_kv(const char *cmd, const char *s, kv_type *out);

/* Sampling and context options common to run and chat, as getopt_long ids. */
enum {
    CLI_OPT_TEMP = 1000, CLI_OPT_TOPK, CLI_OPT_TOPP, CLI_OPT_MINP, CLI_OPT_REP, CLI_OPT_REPN, CLI_OPT_FREQ, CLI_OPT_PRES,
    CLI_OPT_KV, CLI_OPT_SEED, CLI_OPT_CTX, CLI_OPT_THREADS
};
#define CLI_SAMPLING_OPTIONS                                                                                          \
    {"temp", required_argument, 0, CLI_OPT_TEMP}, {"top-k", required_argument, 0, CLI_OPT_TOPK},                     \
        {"top-p", required_argument, 0, CLI_OPT_TOPP}, {"min-p", required_argument, 0, CLI_OPT_MINP},                \
        {"repeat-penalty", required_argument, 0, CLI_OPT_REP}, {"repeat-last-n", required_argument, 0, CLI_OPT_REPN}, \
        {"frequency-penalty", required_argument, 0, CLI_OPT_FREQ}, {"presence-penalty", required_argument, 0, CLI_OPT_PRES}, \
        {"kv-type", required_argument, 0, CLI_OPT_KV}, {"seed", required_argument, 0, CLI_OPT_SEED},                 \
        {"ctx-size", required_argument, 0, CLI_OPT_CTX}, {"threads", required_argument, 0, CLI_OPT_THREADS}

typedef struct cli_gen_opts {
    sampler_params sp;
    kv_type kv;
    long n_ctx, threads;
} cli_gen_opts;

void cli_gen_defaults(cli_gen_opts *o);
/* Handles one of the CLI_OPT_* options. Returns 1 if c was one (0 if not), -1 on a bad value. */
int cli_gen_option(const char *cmd, int c, const char *arg, cli_gen_opts *o);
/* Help text lines for the common options. */
const char *cli_gen_help(void);

/* For a command writing out_path through gguf_writer_write (which writes
 * "<out_path>.tmp" and renames it when complete): on SIGINT, SIGTERM or
 * SIGHUP the temporary file is removed before the process dies, so an
 * interrupted run leaves neither a truncated file nor litter. */
void cli_remove_tmp_on_signal(const char *out_path);

#endif
