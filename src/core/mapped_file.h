/* mapped_file.h - a whole file mapped read-only into memory.
 *
 * Model weights are never copied: tensors point straight into this mapping. */
#ifndef AIRLOCK_CORE_MAPPED_FILE_H
#define AIRLOCK_CORE_MAPPED_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct mapped_file {
    const uint8_t *data; /* [size] bytes, read-only; NULL when size == 0 */
    size_t size;
} mapped_file;

/* Maps path read-only. Returns 0, or -1 with err set (naming the path). */
int mapped_file_open(mapped_file *mf, const char *path, al_err *err);

/* Unmaps; safe on a zeroed struct. */
void mapped_file_close(mapped_file *mf);

/* Reads a whole (small) file into a malloc'd, NUL-terminated buffer.
 * Returns the buffer (caller frees) and its length in *len, or NULL with err set. */
char *file_read_all(const char *path, size_t *len, al_err *err);

#endif
