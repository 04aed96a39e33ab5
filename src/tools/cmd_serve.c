/* cmd_serve.c - `airlock serve`: the OpenAI-compatible HTTP server. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "server/auth.h"
#include "server/engine.h"
#include "server/metrics.h"
#include "server/server.h"
#include "tools/cli_util.h"
#include "tools/commands.h"

#define MAX_MODELS 16

static void help(void) {
    printf("usage: airlock serve (-m FILE | --model NAME=FILE ...) (--api-keys FILE | --no-auth) [options]\n\n"
           "An OpenAI-compatible HTTP server: /v1/chat/completions, /v1/completions (suffix\n"
           "for fill-in-the-middle), /infill, /v1/models, /health, /metrics. Concurrent\n"
           "requests are decoded together (continuous batching over --parallel slots).\n\n"
           "models\n"
           "  -m, --model [NAME=]FILE   a GGUF model; repeat to serve several (NAME defaults to\n"
           "                            the file name without .gguf; requests pick by 'model')\n"
           "      --chat-template NAME  format for models whose template is missing or unknown\n"
           "  -c, --ctx-size N          positions per slot (default: the model's, at most 8192)\n"
           "  -np, --parallel N         slots per model: requests generated at once (default 4)\n"
           "  -b, --batch N             most tokens per forward pass (default 512)\n"
           "      --kv-type f16|f32     KV cache precision (default f16)\n"
           "  -t, --threads N           compute threads (default: all cores)\n"
           "network and limits\n"
           "      --host ADDR           numeric address to listen on (default 127.0.0.1)\n"
           "      --port N              port (default 8080; 0 picks a free one)\n"
           "      --queue N             requests waiting for a slot before 503 (default 64)\n"
           "      --max-body BYTES      request body limit (default 8388608)\n"
           "      --max-header BYTES    request line + headers limit (default 65536)\n"
           "      --max-conns N         concurrent connections (default 256)\n"
           "      --idle-timeout S      seconds a connection may stay silent (default 30)\n"
           "      --timeout S           seconds a request may take in all (default 600)\n"
           "security and logs\n"
           "      --api-keys FILE       key file (`airlock keys add FILE --id NAME`); every route\n"
           "                            but /health then needs 'Authorization: Bearer KEY'\n"
           "      --no-auth             serve without keys (anyone who can connect may use it)\n"
           "      --metrics-admin       /metrics needs an admin key\n"
           "      --log-file PATH       request log, one JSON line each (default stderr)\n"
           "      --log-content         also log prompts and completions (off: never logged)\n");
}

static int parse_size(const char *s, const char *name, long lo, long hi, long *out) {
    return cli_parse_int("serve", s, name, lo, hi, out);
}

/* A model name: what clients send in 'model'. */
static bool model_name_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 128) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("._-:/+", c))) return false;
    }
    return true;
}

int cmd_serve(int argc, char **argv) {
    enum {
        O_TEMPLATE = 256, O_HOST, O_PORT, O_QUEUE, O_MAXBODY, O_MAXHDR, O_MAXCONN, O_IDLE, O_TIMEOUT, O_KEYS, O_NOAUTH,
        O_MADMIN, O_LOGFILE, O_LOGCONTENT, O_KV, O_PARALLEL
    };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"chat-template", required_argument, 0, O_TEMPLATE},
        {"ctx-size", required_argument, 0, 'c'}, {"parallel", required_argument, 0, O_PARALLEL},
        {"np", required_argument, 0, O_PARALLEL}, {"batch", required_argument, 0, 'b'},
        {"kv-type", required_argument, 0, O_KV}, {"threads", required_argument, 0, 't'},
        {"host", required_argument, 0, O_HOST}, {"port", required_argument, 0, O_PORT},
        {"queue", required_argument, 0, O_QUEUE}, {"max-body", required_argument, 0, O_MAXBODY},
        {"max-header", required_argument, 0, O_MAXHDR}, {"max-conns", required_argument, 0, O_MAXCONN},
        {"idle-timeout", required_argument, 0, O_IDLE}, {"timeout", required_argument, 0, O_TIMEOUT},
        {"api-keys", required_argument, 0, O_KEYS}, {"no-auth", no_argument, 0, O_NOAUTH},
        {"metrics-admin", no_argument, 0, O_MADMIN}, {"log-file", required_argument, 0, O_LOGFILE},
        {"log-content", no_argument, 0, O_LOGCONTENT}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char *names[MAX_MODELS], *paths[MAX_MODELS];
    int n_models = 0;
    const char *tmpl = NULL, *keys_path = NULL, *log_path = NULL, *host = "127.0.0.1";
    long n_ctx = 0, n_par = 4, n_batch = 512, threads = 0, port = 8080, qmax = 64, max_body = 8 << 20, max_hdr = 65536,
         max_conns = 256, idle = 30, timeout = 600;
    bool no_auth = false, metrics_admin = false, log_content = false;
    kv_type kv = KV_F16;
    int c, rc = 2;
    optind = 1;
    /* "-np N" (llama.cpp's spelling) reaches getopt as -n p; rewrite it first */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-np") == 0) argv[i] = "--parallel";
    while ((c = getopt_long(argc, argv, "m:c:b:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': {
            if (n_models == MAX_MODELS) {
                fprintf(stderr, "airlock serve: at most %d models\n", MAX_MODELS);
                goto out;
            }
            const char *eq = strchr(optarg, '=');
            char *name, *path;
            if (eq) {
                name = strndup(optarg, (size_t)(eq - optarg));
                path = strdup(eq + 1);
            } else {
                path = strdup(optarg);
                const char *base = strrchr(optarg, '/');
                base = base ? base + 1 : optarg;
                size_t bl = strlen(base);
                if (bl > 5 && strcmp(base + bl - 5, ".gguf") == 0) bl -= 5;
                name = strndup(base, bl);
            }
            if (!name || !path) {
                free(name);
                free(path);
                fprintf(stderr, "airlock serve: out of memory\n");
                goto out;
            }
            names[n_models] = name;
            paths[n_models] = path;
            n_models++;
            if (!model_name_ok(name)) {
                fprintf(stderr, "airlock serve: model name '%s' must be 1-128 characters of A-Z a-z 0-9 . _ - : / +\n", name);
                goto out;
            }
            break;
        }
        case O_TEMPLATE: tmpl = optarg; break;
        case 'c': if (parse_size(optarg, "--ctx-size", 0, 1 << 20, &n_ctx)) goto out; break;
        case O_PARALLEL: if (parse_size(optarg, "--parallel", 1, 256, &n_par)) goto out; break;
        case 'b': if (parse_size(optarg, "--batch", 1, 512, &n_batch)) goto out; break;
        case 't': if (parse_size(optarg, "--threads", 0, 1024, &threads)) goto out; break;
        case O_KV: if (cli_parse_kv("serve", optarg, &kv)) goto out; break;
        case O_HOST: host = optarg; break;
        case O_PORT: if (parse_size(optarg, "--port", 0, 65535, &port)) goto out; break;
        case O_QUEUE: if (parse_size(optarg, "--queue", 0, 1 << 20, &qmax)) goto out; break;
        case O_MAXBODY: if (parse_size(optarg, "--max-body", 1024, 1l << 30, &max_body)) goto out; break;
        case O_MAXHDR: if (parse_size(optarg, "--max-header", 4096, 1 << 24, &max_hdr)) goto out; break;
        case O_MAXCONN: if (parse_size(optarg, "--max-conns", 1, 65536, &max_conns)) goto out; break;
        case O_IDLE: if (parse_size(optarg, "--idle-timeout", 1, 86400, &idle)) goto out; break;
        case O_TIMEOUT: if (parse_size(optarg, "--timeout", 1, 7 * 86400, &timeout)) goto out; break;
        case O_KEYS: keys_path = optarg; break;
        case O_NOAUTH: no_auth = true; break;
        case O_MADMIN: metrics_admin = true; break;
        case O_LOGFILE: log_path = optarg; break;
        case O_LOGCONTENT: log_content = true; break;
        case 'h': help(); rc = 0; goto out;
        default: goto out;
        }
    }
    if (n_models == 0 || optind != argc) {
        fprintf(stderr, "airlock serve: need -m MODEL (see --help)\n");
        goto out;
    }
    if (!keys_path && !no_auth) {
        fprintf(stderr, "airlock serve: no API keys configured. Create some with `airlock keys add KEYFILE --id NAME` and\n"
                        "pass --api-keys KEYFILE, or pass --no-auth to let anyone who can connect use the server.\n");
        goto out;
    }
    if (keys_path && no_auth) {
        fprintf(stderr, "airlock serve: --api-keys and --no-auth contradict each other\n");
        goto out;
    }
    if (metrics_admin && !keys_path) {
        fprintf(stderr, "airlock serve: --metrics-admin needs --api-keys\n");
        goto out;
    }
    rc = 1;
    al_err err;
    auth_keys keys = {0};
    FILE *log = stderr;
    metrics *mx = NULL;
    engine *e = NULL;
    server *srv = NULL;
    if (keys_path && auth_keys_load(&keys, keys_path, &err)) {
        fprintf(stderr, "airlock serve: %s\n", err.msg);
        goto out;
    }
    if (log_path && !(log = fopen(log_path, "a"))) {
        perror(log_path);
        log = NULL;
        goto done;
    }
    if (ops_set_threads((int)threads)) {
        fprintf(stderr, "airlock serve: cannot start %ld threads\n", threads);
        goto done;
    }
    /* every thread started from here on inherits these signals blocked; sigwait takes them */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    mx = metrics_init();
    engine_config ec = {.n_slots = (int)n_par, .n_ctx = (int)n_ctx, .n_batch = (int)n_batch, .queue_max = (int)qmax, .kv = kv};
    if (!mx || !(e = engine_init(&ec, mx, &err))) {
        fprintf(stderr, "airlock serve: %s\n", mx ? err.msg : "out of memory");
        goto done;
    }
    for (int i = 0; i < n_models; i++)
        if (engine_add_model(e, names[i], paths[i], tmpl, &err)) {
            fprintf(stderr, "airlock serve: %s\n", err.msg);
            goto done;
        }
    if (engine_start(e, &err)) {
        fprintf(stderr, "airlock serve: %s\n", err.msg);
        goto done;
    }
    server_config sc = {.host = host, .port = (int)port, .max_body = (size_t)max_body, .max_header = (size_t)max_hdr,
                        .max_conns = (int)max_conns, .idle_timeout = (int)idle, .request_timeout = (int)timeout,
                        .keys = keys_path ? &keys : NULL, .metrics_admin = metrics_admin, .log_content = log_content,
                        .log = log};
    if (!(srv = server_start(&sc, e, mx, &err))) {
        fprintf(stderr, "airlock serve: %s\n", err.msg);
        goto done;
    }
    fprintf(stderr, "airlock serve: listening on http://%s%s%s:%d (", strchr(host, ':') ? "[" : "", host,
            strchr(host, ':') ? "]" : "", server_port(srv));
    for (int i = 0; i < n_models; i++)
        fprintf(stderr, "%s%s: %d slots x %d tokens", i ? "; " : "", names[i], (int)n_par, engine_n_ctx(e, i));
    fprintf(stderr, "; %s)\n", keys_path ? "API keys required" : "NO AUTHENTICATION");
    if (log_content) fprintf(stderr, "airlock serve: WARNING: --log-content writes prompts and completions to the log\n");
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "airlock serve: signal %d, shutting down\n", sig);
    rc = 0;
done:
    if (e) engine_stop(e);  /* ends every generation so connections answer and close */
    server_stop(srv);
    engine_free(e);
    metrics_free(mx);
    auth_keys_free(&keys);
    if (log && log != stderr) fclose(log);
out:
    for (int i = 0; i < n_models; i++) {
        free(names[i]);
        free(paths[i]);
    }
    return rc;
}
