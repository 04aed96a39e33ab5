/* json_write.c - JSON string escaping. */
#include "core/json_write.h"

#include <math.h>

#include "text/unicode.h"

void json_write_str(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            switch (c) {
            case '"': fputs("\\\"", f); break;
            case '\\': fputs("\\\\", f); break;
            case '\n': fputs("\\n", f); break;
            case '\r': fputs("\\r", f); break;
            case '\t': fputs("\\t", f); break;
            default:
                if (c < 0x20 || c == 0x7F) fprintf(f, "\\u%04x", c);
                else fputc(c, f);
            }
            i++;
            continue;
        }
        size_t adv;
        uint32_t cp = utf8_decode(s + i, n - i, &adv);
        char u[4];
        int k = utf8_encode(cp, u);
        fwrite(u, 1, (size_t)k, f);
        i += adv;
    }
    fputc('"', f);
}

void json_write_num(FILE *f, double v) {
    if (!isfinite(v)) fputs("null", f);
    else if (v == (double)(long long)v && fabs(v) < 1e15) fprintf(f, "%lld", (long long)v);
    else fprintf(f, "%.9g", v);
}
