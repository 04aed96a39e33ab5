/* auth.h - API keys.
 *
 * The server never stores a key, only its SHA-256: a key file holds one key
 * per line, "ID ROLE SHA256HEX", ROLE being "user" or "admin", '#' starting a
 * comment. `airlock keys add` creates a random key, prints it once and
 * appends its line. A presented key is hashed and compared with every stored
 * hash in constant time; logs name the key's ID, never the key. */
#ifndef AIRLOCK_SERVER_AUTH_H
#define AIRLOCK_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define AUTH_ID_MAX 64
#define AUTH_KEY_MAX 128 /* longest key accepted (generated keys are 46 characters) */

typedef struct auth_key {
    char id[AUTH_ID_MAX];
    bool admin;
    uint8_t hash[32];
} auth_key;

typedef struct auth_keys {
    auth_key *keys;
    size_t n;
} auth_keys;

/* Reads a key file. Returns 0, or -1 with err naming the file, line and what
 * is wrong (bad ID, unknown role, malformed hash, duplicate ID). */
int auth_keys_load(auth_keys *k, const char *path, al_err *err);
void auth_keys_free(auth_keys *k);

/* The key whose hash matches the presented key, or NULL. Every stored hash
 * is compared, each in constant time. */
const auth_key *auth_keys_check(const auth_keys *k, const char *key, size_t len);

/* SHA-256 of key as 64 lowercase hex digits plus NUL. Returns 0 or -1. */
int auth_hash_hex(const char *key, size_t len, char out[65]);

/* A fresh random key: "al-" and 43 base64url characters (256 bits) from
 * the kernel's generator. Returns 0 or -1 with err. */
int auth_key_generate(char out[AUTH_KEY_MAX], al_err *err);

/* True if id is 1..63 characters of [A-Za-z0-9._-]. */
bool auth_id_valid(const char *id);

#endif
