/* server.h - the HTTP front of `airlock serve` (libmicrohttpd).
 *
 * Routes: GET /health, GET /v1/models, POST /v1/chat/completions,
 * POST /v1/completions, POST /infill, GET /metrics. Each connection has its
 * own thread (libmicrohttpd's thread-per-connection mode), which waits on its
 * generation while the engine thread computes; limits on connections, header
 * and body size, idle and total time keep slow or hostile clients from
 * holding resources. One JSON log line per request, without prompt or
 * completion text unless log_content is set. */
#ifndef AIRLOCK_SERVER_SERVER_H
#define AIRLOCK_SERVER_SERVER_H

#include <stdbool.h>
#include <stdio.h>

#include "core/error.h"
#include "server/auth.h"
#include "server/engine.h"
#include "server/metrics.h"

typedef struct server_config {
    const char *host;        /* numeric IPv4/IPv6 address to listen on */
    int port;                /* 0: any free port (server_port tells which) */
    size_t max_body;         /* bytes of request body */
    size_t max_header;       /* bytes of request line + headers */
    int max_conns;           /* concurrent connections */
    int idle_timeout;        /* seconds a connection may stay silent */
    int request_timeout;     /* seconds a request may take from its first byte to the end of its answer */
    const auth_keys *keys;   /* NULL: no authentication */
    bool metrics_admin;      /* /metrics needs an admin key */
    bool log_content;        /* log prompts and completions (off by default) */
    FILE *log;               /* request log (one JSON line each) */
} server_config;

typedef struct server server;

/* Starts listening. Returns NULL with err (address in use, bad host...). */
server *server_start(const server_config *cfg, engine *e, metrics *mx, al_err *err);
int server_port(const server *s);
/* Stops accepting, closes every connection and waits for their threads. */
void server_stop(server *s);

#endif
