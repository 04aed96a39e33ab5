/* cmd_chat.c - `airlock chat -m MODEL`: an interactive conversation.
 *
 * Each turn the whole conversation is rendered with the model's chat
 * template and tokenized; the tokens it shares with what is already in the
 * KV cache are not computed again (only the new suffix is decoded). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>

#include "core/strbuf.h"
#include "models/llm.h"
#include "models/sampler.h"
#include "text/chat_template.h"
#include "tools/cli_util.h"
#include "tools/commands.h"

static void help(void) {
    printf("usage: airlock chat -m MODEL.gguf [options]\n\n"
           "An interactive chat using the model's chat template. Type a message and\n"
           "press Enter; /reset starts over, /exit (or Ctrl-D) quits. Line editing and\n"
           "history when stdin is a terminal; otherwise one message per input line.\n\n"
           "  -m, --model FILE          GGUF model\n"
           "      --system TEXT         system prompt\n"
           "      --chat-template NAME  use this format instead of the model's template\n"
           "                            (%s)\n"
           "  -n, --n-predict N         most tokens per reply (default 512)\n"
           "%s",
           chat_format_names(), cli_gen_help());
}

typedef struct convo {
    chat_message *m;
    char **owned; /* contents we allocated */
    size_t n, cap;
} convo;

static int convo_add(convo *c, const char *role, const char *content) {
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 16;
        chat_message *nm = realloc(c->m, nc * sizeof *nm);
        if (!nm) return -1;
        c->m = nm;
        char **no = realloc(c->owned, nc * sizeof *no);
        if (!no) return -1;
        c->owned = no;
        c->cap = nc;
    }
    char *dup = strdup(content);
    if (!dup) return -1;
    c->owned[c->n] = dup;
    c->m[c->n] = (chat_message){role, dup};
    c->n++;
    return 0;
}

static void convo_truncate(convo *c, size_t n) {
    while (c->n > n) free(c->owned[--c->n]);
}

/* Reads one line: editline on a terminal, plain stdin otherwise. NULL at EOF. */
static char *read_line(bool tty) {
    if (tty) {
        char *l = readline("> ");
        if (l && *l) add_history(l);
        return l;
    }
    strbuf b = {0};
    int ch;
    while ((ch = getchar()) != EOF && ch != '\n') {
        char cc = (char)ch;
        strbuf_put(&b, &cc, 1);
    }
    if (ch == EOF && b.n == 0) {
        strbuf_free(&b);
        return NULL;
    }
    return strbuf_take(&b);
}

int cmd_chat(int argc, char **argv) {
    enum { O_SYSTEM = 256, O_TEMPLATE };
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"system", required_argument, 0, O_SYSTEM},
                                         {"chat-template", required_argument, 0, O_TEMPLATE}, {"n-predict", required_argument, 0, 'n'},
                                         {"help", no_argument, 0, 'h'}, CLI_SAMPLING_OPTIONS, {0, 0, 0, 0}};
    const char *model_path = NULL, *system = NULL, *force_template = NULL;
    long n_predict = 512;
    cli_gen_opts go;
    cli_gen_defaults(&go);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:n:c:s:t:h", opts, NULL)) != -1) {
        int r = cli_gen_option("chat", c == 'c' ? CLI_OPT_CTX : c == 's' ? CLI_OPT_SEED : c == 't' ? CLI_OPT_THREADS : c, optarg, &go);
        if (r < 0) return 2;
        if (r > 0) continue;
        switch (c) {
        case 'm': model_path = optarg; break;
        case O_SYSTEM: system = optarg; break;
        case O_TEMPLATE: force_template = optarg; break;
        case 'n': if (cli_parse_int("chat", optarg, "--n-predict", 1, 1 << 20, &n_predict)) return 2; break;
        case 'h': help(); return 0;
        default: return 2;
        }
    }
    if (!model_path || optind != argc) {
        fprintf(stderr, "airlock chat: need -m MODEL (see --help)\n");
        return 2;
    }
    al_err err;
    if (ops_set_threads((int)go.threads)) {
        fprintf(stderr, "airlock chat: cannot start %ld threads\n", go.threads);
        return 1;
    }
    llm_model *m = llm_load(model_path, &err);
    if (!m) {
        fprintf(stderr, "airlock chat: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    chat_template tmpl = {0};
    llm_ctx *ctx = NULL;
    sampler *smp = NULL;
    convo cv = {0};
    token_vec cached = {0}, toks = {0};
    if (llm_chat_template_init(m, force_template, &tmpl, &err)) {
        fprintf(stderr, "airlock chat: %s\n", err.msg);
        rc = 1;
        goto done;
    }
    ctx = llm_ctx_init(m, (int)go.n_ctx, go.kv, &err);
    if (!ctx) {
        fprintf(stderr, "airlock chat: %s\n", err.msg);
        rc = 1;
        goto done;
    }
    smp = sampler_init(&go.sp, m->hp.n_vocab);
    if (!smp || (system && convo_add(&cv, "system", system))) {
        fprintf(stderr, "airlock chat: out of memory\n");
        rc = 1;
        goto done;
    }
    bool tty = isatty(0) && isatty(1);
    size_t base = cv.n;
    if (tty) fprintf(stderr, "airlock chat: %s format, %d-token context. /reset starts over, /exit quits.\n",
                     chat_format_name(tmpl.format), ctx->n_ctx);
    for (;;) {
        char *line = read_line(tty);
        if (!line) break;
        if (strcmp(line, "/exit") == 0 || strcmp(line, "/quit") == 0) {
            free(line);
            break;
        }
        if (strcmp(line, "/reset") == 0) {
            convo_truncate(&cv, base);
            cached.n = 0;
            llm_ctx_reset(ctx);
            free(line);
            fprintf(stderr, "(conversation reset)\n");
            continue;
        }
        if (!*line) {
            free(line);
            continue;
        }
        int add = convo_add(&cv, "user", line);
        free(line);
        if (add) break;
        char *prompt = chat_template_apply(&tmpl, cv.m, cv.n, true, &err);
        toks.n = 0;
        if (!prompt || llm_tokenize_chat(m, &tmpl, prompt, &toks, &err)) {
            fprintf(stderr, "airlock chat: %s\n", err.msg);
            free(prompt);
            rc = 1;
            break;
        }
        free(prompt);
        if ((long)toks.n + 1 >= ctx->n_ctx) {
            fprintf(stderr, "airlock chat: the conversation (%zu tokens) no longer fits the %d-token context; /reset to start over\n",
                    toks.n, ctx->n_ctx);
            convo_truncate(&cv, cv.n - 1);
            continue;
        }
        /* reuse the cached prefix; decode the rest */
        size_t p = 0;
        while (p < cached.n && p < toks.n && cached.ids[p] == toks.ids[p]) p++;
        if (p == toks.n && p > 0) p--; /* recompute the last token to get its logits */
        ctx->pos = (int)p;
        cached.n = p;
        const float *logits = NULL;
        for (size_t i = p; i < toks.n && rc == 0; i++) {
            sampler_accept(smp, toks.ids[i]);
            if (token_vec_push(&cached, toks.ids[i])) rc = 1;
        }
        if (rc == 0 && !(logits = llm_prefill(ctx, toks.ids + p, (int)(toks.n - p), &err))) rc = 1;
        strbuf reply = {0};
        for (long g = 0; rc == 0 && g < n_predict; g++) {
            int32_t t = sampler_sample(smp, logits);
            if (tokenizer_is_eog(m->tok, t)) break;
            sampler_accept(smp, t);
            char piece[256];
            int k = tokenizer_token_to_piece(m->tok, t, false, piece, sizeof piece);
            if (k > (int)sizeof piece) k = (int)sizeof piece;
            if (k > 0) {
                fwrite(piece, 1, (size_t)k, stdout);
                fflush(stdout);
                strbuf_put(&reply, piece, (size_t)k);
            }
            if (ctx->pos >= ctx->n_ctx) {
                fprintf(stderr, "\n(context full)");
                break;
            }
            if (!(logits = llm_decode(ctx, t, &err)) || token_vec_push(&cached, t)) rc = 1;
        }
        putchar('\n');
        fflush(stdout);
        if (rc) {
            fprintf(stderr, "airlock chat: %s\n", err.msg);
            strbuf_free(&reply);
            break;
        }
        char *r = strbuf_take(&reply);
        if (!r || convo_add(&cv, "assistant", r)) {
            free(r);
            rc = 1;
            break;
        }
        free(r);
    }
done:
    ops_set_threads(1);
    convo_truncate(&cv, 0);
    free(cv.m);
    free(cv.owned);
    token_vec_free(&cached);
    token_vec_free(&toks);
    sampler_free(smp);
    llm_ctx_free(ctx);
    chat_template_free(&tmpl);
    llm_free(m);
    return rc;
}
