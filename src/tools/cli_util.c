/* cli_util.c - shared option parsing. */
#include "tools/cli_util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_parse_int(const char *cmd, const char *s, const char *name, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "airlock %s: %s must be an integer in [%ld, %ld], got '%s'\n", cmd, name, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_float(const char *cmd, const char *s, const char *name, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || *end || end == s || !(v >= lo && v <= hi)) {
        fprintf(stderr, "airlock %s: %s must be a number in [%g, %g], got '%s'\n", cmd, name, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_kv(const char *cmd, const char *s, kv_type *out) {
    if (strcmp(s, "f16") == 0) *out = KV_F16;
    else if (strcmp(s, "f32") == 0) *out = KV_F32;
    else {
        fprintf(stderr, "airlock %s: --kv-type must be f16 or f32\n", cmd);
        return -1;
    }
    return 0;
}

void cli_gen_defaults(cli_gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->sp = sampler_default_params();
    o->sp.seed = 42;
    o->kv = KV_F16;
}

int cli_gen_option(const char *cmd, int c, const char *arg, cli_gen_opts *o) {
    long v;
    switch (c) {
    case CLI_OPT_TEMP: return cli_parse_float(cmd, arg, "--temp", 0, 100, &o->sp.temperature) ? -1 : 1;
    case CLI_OPT_TOPK:
        if (cli_parse_int(cmd, arg, "--top-k", 0, 1 << 24, &v)) return -1;
        o->sp.top_k = (int)v;
        return 1;
    case CLI_OPT_TOPP: return cli_parse_float(cmd, arg, "--top-p", 0, 1, &o->sp.top_p) ? -1 : 1;
    case CLI_OPT_MINP: return cli_parse_float(cmd, arg, "--min-p", 0, 1, &o->sp.min_p) ? -1 : 1;
    case CLI_OPT_REP: return cli_parse_float(cmd, arg, "--repeat-penalty", 0.01f, 100, &o->sp.repeat_penalty) ? -1 : 1;
    case CLI_OPT_REPN:
        if (cli_parse_int(cmd, arg, "--repeat-last-n", 0, 1 << 20, &v)) return -1;
        o->sp.penalty_last_n = (int)v;
        return 1;
    case CLI_OPT_FREQ: return cli_parse_float(cmd, arg, "--frequency-penalty", -2, 2, &o->sp.frequency_penalty) ? -1 : 1;
    case CLI_OPT_PRES: return cli_parse_float(cmd, arg, "--presence-penalty", -2, 2, &o->sp.presence_penalty) ? -1 : 1;
    case CLI_OPT_SEED:
        if (cli_parse_int(cmd, arg, "--seed", 0, 0x7fffffffL, &v)) return -1;
        o->sp.seed = (uint64_t)v;
        return 1;
    case CLI_OPT_CTX: return cli_parse_int(cmd, arg, "--ctx-size", 0, 1 << 24, &o->n_ctx) ? -1 : 1;
    case CLI_OPT_THREADS: return cli_parse_int(cmd, arg, "--threads", 0, 1024, &o->threads) ? -1 : 1;
    case CLI_OPT_KV: return cli_parse_kv(cmd, arg, &o->kv) ? -1 : 1;
    default: return 0;
    }
}

const char *cli_gen_help(void) {
    return "  -c, --ctx-size N          context length (default: the model's)\n"
           "  -s, --seed N              random seed (default 42)\n"
           "      --temp T              temperature (default 0.8; 0 = greedy)\n"
           "      --top-k N             keep the N most likely tokens (default 40; 0 = off)\n"
           "      --top-p P             nucleus sampling (default 0.95; 1 = off)\n"
           "      --min-p P             drop tokens below P x the best (default 0.05; 0 = off)\n"
           "      --repeat-penalty F    penalise recent tokens (default 1.0 = off)\n"
           "      --repeat-last-n N     how many recent tokens the penalties see (default 64)\n"
           "      --frequency-penalty F subtract F x count of recent occurrences\n"
           "      --presence-penalty F  subtract F once if recently present\n"
           "  -t, --threads N           worker threads (default: all cores)\n"
           "      --kv-type f16|f32     KV cache precision (default f16)\n";
}

static char g_tmp_path[4096];

static void remove_tmp_and_die(int sig) {
    if (g_tmp_path[0]) unlink(g_tmp_path); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

void cli_remove_tmp_on_signal(const char *out_path) {
    if ((size_t)snprintf(g_tmp_path, sizeof g_tmp_path, "%s.tmp", out_path) >= sizeof g_tmp_path) {
        g_tmp_path[0] = 0;
        return;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = remove_tmp_and_die;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}
