/* auth.c - API key files, hashing and constant-time checks (OpenSSL's SHA-256). */
#include "server/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

/* SHA-256 of data into out[32]. Returns 0 or -1. */
static int sha256(const void *data, size_t len, uint8_t out[32]) {
    unsigned int n = 0;
    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32 ? 0 : -1;
}

int auth_hash_hex(const char *key, size_t len, char out[65]) {
    uint8_t h[32];
    if (sha256(key, len, h)) return -1;
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 15];
    }
    out[64] = 0;
    return 0;
}

bool auth_id_valid(const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n >= AUTH_ID_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int hex_val(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Parses one non-comment line "ID ROLE HEX" into key. Returns 0 or -1 with err. */
static int parse_line(char *line, auth_key *key, al_err *err) {
    char *save = NULL;
    char *id = strtok_r(line, " \t", &save), *role = strtok_r(NULL, " \t", &save), *hex = strtok_r(NULL, " \t", &save);
    if (!id || !role || !hex || strtok_r(NULL, " \t", &save))
        return al_err_set(err, "expected three fields: ID ROLE SHA256HEX");
    if (!auth_id_valid(id)) return al_err_set(err, "key ID '%.80s' must be 1-63 characters of A-Z a-z 0-9 . _ -", id);
    if (strcmp(role, "admin") == 0) key->admin = true;
    else if (strcmp(role, "user") == 0) key->admin = false;
    else return al_err_set(err, "role '%.40s' is neither 'user' nor 'admin'", role);
    if (strlen(hex) != 64) return al_err_set(err, "hash must be 64 hex digits (SHA-256), got %zu characters", strlen(hex));
    for (int i = 0; i < 32; i++) {
        int hi = hex_val(hex[2 * i]), lo = hex_val(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return al_err_set(err, "hash has a non-hex character");
        key->hash[i] = (uint8_t)(hi << 4 | lo);
    }
    snprintf(key->id, sizeof key->id, "%s", id);
    return 0;
}

int auth_keys_load(auth_keys *k, const char *path, al_err *err) {
    memset(k, 0, sizeof *k);
    FILE *f = fopen(path, "r");
    if (!f) return al_err_set(err, "%s: %s", path, strerror(errno));
    char line[512];
    int lineno = 0, rc = 0;
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            rc = al_err_set(err, "%s:%d: line too long", path, lineno);
            break;
        }
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
            line[--len] = 0;
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) continue;
        if (k->n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            auth_key *nk = realloc(k->keys, nc * sizeof *nk);
            if (!nk) {
                rc = al_err_set(err, "out of memory");
                break;
            }
            k->keys = nk;
            cap = nc;
        }
        auth_key key = {0};
        if (parse_line(p, &key, err)) {
            rc = al_err_prefix(err, "%s:%d", path, lineno);
            break;
        }
        for (size_t i = 0; i < k->n && rc == 0; i++)
            if (strcmp(k->keys[i].id, key.id) == 0) rc = al_err_set(err, "%s:%d: duplicate key ID '%s'", path, lineno, key.id);
        if (rc) break;
        k->keys[k->n++] = key;
    }
    if (rc == 0 && ferror(f)) rc = al_err_set(err, "%s: read error", path);
    fclose(f);
    if (rc == 0 && k->n == 0) rc = al_err_set(err, "%s: no keys (add one with `airlock keys add %s --id NAME`)", path, path);
    if (rc) auth_keys_free(k);
    return rc;
}

void auth_keys_free(auth_keys *k) {
    free(k->keys);
    k->keys = NULL;
    k->n = 0;
}

const auth_key *auth_keys_check(const auth_keys *k, const char *key, size_t len) {
    if (len == 0 || len > AUTH_KEY_MAX) return NULL;
    uint8_t h[32];
    if (sha256(key, len, h)) return NULL;
    const auth_key *found = NULL;
    for (size_t i = 0; i < k->n; i++)
        if (CRYPTO_memcmp(h, k->keys[i].hash, 32) == 0) found = &k->keys[i];
    return found;
}

int auth_key_generate(char out[AUTH_KEY_MAX], al_err *err) {
    uint8_t r[33];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = getrandom(r + got, sizeof r - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return al_err_set(err, "getrandom: %s", strerror(errno));
        }
        got += (size_t)n;
    }
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    memcpy(out, "al-", 3);
    size_t o = 3;
    for (size_t i = 0; i < 32; i += 3) { /* 33 bytes -> 44 characters; keep 43 (256 bits + 2) */
        uint32_t v = (uint32_t)r[i] << 16 | (uint32_t)r[i + 1] << 8 | r[i + 2];
        for (int s = 18; s >= 0 && o < 3 + 43; s -= 6) out[o++] = b64[(v >> s) & 63];
    }
    out[o] = 0;
    return 0;
}
