/* cmd_keys.c - `airlock keys`: create and list API keys for `airlock serve`. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "server/auth.h"
#include "tools/commands.h"

static void help(void) {
    printf("usage: airlock keys add FILE --id NAME [--admin]\n"
           "       airlock keys list FILE\n\n"
           "add   creates a random key, prints it once on stdout and appends its SHA-256\n"
           "      to FILE (created with mode 0600). The key itself is stored nowhere.\n"
           "      --admin lets the key read /metrics when the server runs --metrics-admin.\n"
           "list  prints the IDs and roles in FILE.\n");
}

static int keys_add(const char *path, const char *id, bool admin) {
    al_err err;
    if (!auth_id_valid(id)) {
        fprintf(stderr, "airlock keys: --id must be 1-63 characters of A-Z a-z 0-9 . _ -\n");
        return 2;
    }
    auth_keys existing;
    if (access(path, F_OK) == 0) {
        if (auth_keys_load(&existing, path, &err) && strstr(err.msg, "no keys") == NULL) {
            fprintf(stderr, "airlock keys: %s\n", err.msg);
            return 1;
        }
        for (size_t i = 0; i < existing.n; i++)
            if (strcmp(existing.keys[i].id, id) == 0) {
                fprintf(stderr, "airlock keys: %s already has a key '%s'\n", path, id);
                auth_keys_free(&existing);
                return 1;
            }
        auth_keys_free(&existing);
    }
    char key[AUTH_KEY_MAX], hex[65];
    if (auth_key_generate(key, &err) || auth_hash_hex(key, strlen(key), hex)) {
        fprintf(stderr, "airlock keys: cannot make a key: %s\n", err.msg);
        return 1;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd < 0) {
        fprintf(stderr, "airlock keys: %s: %s\n", path, strerror(errno));
        return 1;
    }
    char line[256];
    int n = snprintf(line, sizeof line, "%s %s %s\n", id, admin ? "admin" : "user", hex);
    if (n <= 0 || write(fd, line, (size_t)n) != n || fsync(fd) != 0) {
        fprintf(stderr, "airlock keys: %s: %s\n", path, strerror(errno));
        close(fd);
        return 1;
    }
    close(fd);
    printf("%s\n", key);
    fprintf(stderr, "airlock keys: added '%s' (%s) to %s; the key above is shown only now\n", id, admin ? "admin" : "user", path);
    return 0;
}

int cmd_keys(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        help();
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "add") == 0) {
        const char *path = NULL, *id = NULL;
        bool admin = false;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--id") == 0 && i + 1 < argc) id = argv[++i];
            else if (strcmp(argv[i], "--admin") == 0) admin = true;
            else if (!path && argv[i][0] != '-') path = argv[i];
            else {
                fprintf(stderr, "airlock keys add: unexpected '%s' (see --help)\n", argv[i]);
                return 2;
            }
        }
        if (!path || !id) {
            fprintf(stderr, "airlock keys add: need FILE and --id NAME\n");
            return 2;
        }
        return keys_add(path, id, admin);
    }
    if (strcmp(argv[1], "list") == 0 && argc == 3) {
        auth_keys k;
        al_err err;
        if (auth_keys_load(&k, argv[2], &err)) {
            fprintf(stderr, "airlock keys: %s\n", err.msg);
            return 1;
        }
        for (size_t i = 0; i < k.n; i++) printf("%s\t%s\n", k.keys[i].id, k.keys[i].admin ? "admin" : "user");
        auth_keys_free(&k);
        return 0;
    }
    fprintf(stderr, "airlock keys: unknown use (see --help)\n");
    return 2;
}
