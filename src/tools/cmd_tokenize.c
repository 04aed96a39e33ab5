/* cmd_tokenize.c - `airlock tokenize -m FILE [--ids|--pieces] TEXT` and
 * `--detokenize IDS`: the model's tokenizer on the command line. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_write.h"
#include "core/mapped_file.h"
#include "formats/gguf.h"
#include "text/tokenizer.h"
#include "tools/commands.h"

static void help(void) {
    printf("usage: airlock tokenize -m MODEL.gguf [options] TEXT\n"
           "       airlock tokenize -m MODEL.gguf --detokenize ID [ID ...]\n\n"
           "  -m, --model FILE     GGUF file whose tokenizer to use (weights not needed)\n"
           "  -f, --file FILE      read the text from FILE instead of the command line\n"
           "      --ids            print only the ids, space-separated (default: id and piece per line)\n"
           "      --pieces         print only the pieces, one per line, JSON-quoted\n"
           "      --no-special     do not add BOS/EOS (or CLS/SEP)\n"
           "      --parse-special  turn control-token text (e.g. <|im_start|>) into its id\n"
           "      --detokenize     the arguments are ids: print the text they decode to\n"
           "      --special        with --detokenize, print control tokens' text too\n");
}

int cmd_tokenize(int argc, char **argv) {
    enum { O_IDS = 256, O_PIECES, O_NOSPECIAL, O_PARSE, O_DETOK, O_SPECIAL };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"file", required_argument, 0, 'f'}, {"ids", no_argument, 0, O_IDS},
        {"pieces", no_argument, 0, O_PIECES}, {"no-special", no_argument, 0, O_NOSPECIAL},
        {"parse-special", no_argument, 0, O_PARSE}, {"detokenize", no_argument, 0, O_DETOK},
        {"special", no_argument, 0, O_SPECIAL}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *model = NULL, *file = NULL;
    int mode = 0; /* 0 both, 1 ids, 2 pieces */
    bool add_special = true, parse_special = false, detok = false, special = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:f:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'f': file = optarg; break;
        case O_IDS: mode = 1; break;
        case O_PIECES: mode = 2; break;
        case O_NOSPECIAL: add_special = false; break;
        case O_PARSE: parse_special = true; break;
        case O_DETOK: detok = true; break;
        case O_SPECIAL: special = true; break;
        case 'h': help(); return 0;
        default: return 2;
        }
    }
    if (!model || (!file && optind >= argc && !detok)) {
        fprintf(stderr, "airlock tokenize: need -m MODEL and TEXT (see --help)\n");
        return 2;
    }
    al_err err;
    gguf_ctx *g = gguf_open(model, &err);
    if (!g) {
        fprintf(stderr, "airlock tokenize: %s\n", err.msg);
        return 1;
    }
    tokenizer *tok = tokenizer_load(g, &err);
    if (!tok) {
        fprintf(stderr, "airlock tokenize: %s\n", err.msg);
        gguf_close(g);
        return 1;
    }
    int rc = 0;
    if (detok) {
        size_t n = (size_t)(argc - optind);
        int32_t *ids = calloc(n ? n : 1, sizeof *ids);
        for (size_t i = 0; ids && i < n; i++) {
            char *end;
            errno = 0;
            long v = strtol(argv[optind + (int)i], &end, 10);
            if (errno || *end || end == argv[optind + (int)i] || v < 0 || v >= tokenizer_n_vocab(tok)) {
                fprintf(stderr, "airlock tokenize: '%s' is not a token id (0..%d)\n", argv[optind + (int)i], tokenizer_n_vocab(tok) - 1);
                rc = 1;
                break;
            }
            ids[i] = (int32_t)v;
        }
        if (!rc && ids) {
            size_t len;
            char *s = tokenizer_decode(tok, ids, n, special, &len, &err);
            if (!s) {
                fprintf(stderr, "airlock tokenize: %s\n", err.msg);
                rc = 1;
            } else {
                fwrite(s, 1, len, stdout);
                putchar('\n');
                free(s);
            }
        }
        free(ids);
    } else {
        char *text = NULL;
        size_t len = 0;
        if (file) {
            text = file_read_all(file, &len, &err);
            if (!text) {
                fprintf(stderr, "airlock tokenize: %s\n", err.msg);
                rc = 1;
            }
        } else {
            /* arguments joined by spaces */
            size_t total = 0;
            for (int i = optind; i < argc; i++) total += strlen(argv[i]) + 1;
            text = malloc(total + 1);
            for (int i = optind; text && i < argc; i++) {
                size_t l = strlen(argv[i]);
                memcpy(text + len, argv[i], l);
                len += l;
                if (i + 1 < argc) text[len++] = ' ';
            }
        }
        token_vec ids = {0};
        if (!rc && text && tokenizer_encode(tok, text, len, add_special, parse_special, &ids, &err)) {
            fprintf(stderr, "airlock tokenize: %s\n", err.msg);
            rc = 1;
        }
        for (size_t i = 0; !rc && i < ids.n; i++) {
            size_t tl;
            const char *raw = tokenizer_token_text(tok, ids.ids[i], &tl);
            char piece[256];
            int pl = tokenizer_token_to_piece(tok, ids.ids[i], true, piece, sizeof piece);
            if (pl > (int)sizeof piece) pl = (int)sizeof piece;
            if (mode == 1) {
                printf(i ? " %d" : "%d", ids.ids[i]);
            } else if (mode == 2) {
                json_write_str(stdout, piece, (size_t)(pl < 0 ? 0 : pl));
                putchar('\n');
            } else {
                printf("%6d  ", ids.ids[i]);
                json_write_str(stdout, raw, tl);
                fputs("  -> ", stdout);
                json_write_str(stdout, piece, (size_t)(pl < 0 ? 0 : pl));
                putchar('\n');
            }
        }
        if (!rc && mode == 1) putchar('\n');
        token_vec_free(&ids);
        free(text);
    }
    tokenizer_free(tok);
    gguf_close(g);
    return rc;
}
