/* chat_template.c - recognising and rendering chat template families. */
#include "text/chat_template.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/strbuf.h"

static const char *const k_names[] = {"unknown", "llama2", "llama3", "chatml", "mistral", "phi3", "gemma", "deepseek", "deepseek3", "llama3.1"};

const char *chat_format_name(chat_format f) { return (unsigned)f < sizeof k_names / sizeof *k_names ? k_names[f] : "?"; }

const char *chat_format_names(void) { return "llama2, llama3, llama3.1, chatml, mistral, phi3, gemma, deepseek, deepseek3"; }

chat_format chat_format_from_name(const char *name) {
    for (size_t i = 1; i < sizeof k_names / sizeof *k_names; i++)
        if (strcmp(k_names[i], name) == 0) return (chat_format)i;
    return CHAT_UNKNOWN;
}

chat_format chat_format_detect(const char *j) {
    if (!j) return CHAT_UNKNOWN;
    if (strstr(j, "<|start_header_id|>") && strstr(j, "<|eot_id|>"))
        return strstr(j, "Cutting Knowledge Date: ") ? CHAT_LLAMA31 : CHAT_LLAMA3;
    if (strstr(j, "<|im_start|>")) return CHAT_CHATML;
    if (strstr(j, "<start_of_turn>")) return CHAT_GEMMA;
    if (strstr(j, "<|user|>") && strstr(j, "<|end|>")) return CHAT_PHI3;
    if (strstr(j, "\xef\xbd\x9cUser\xef\xbd\x9c")) return CHAT_DEEPSEEK3; /* <｜User｜> */
    if (strstr(j, "[INST]") && strstr(j, "<<SYS>>")) return CHAT_LLAMA2;
    if (strstr(j, "[INST]")) return CHAT_MISTRAL;
    if (strstr(j, "'User: '") && strstr(j, "'Assistant:")) return CHAT_DEEPSEEK;
    return CHAT_UNKNOWN;
}

/* A default system prompt written into a ChatML template as a literal, e.g.
 * '<|im_start|>system\nYou are ...<|im_end|>\n'. Returns it unescaped, or NULL. */
static char *find_default_system(const char *j) {
    static const char marker[] = "<|im_start|>system";
    for (const char *p = strstr(j, marker); p; p = strstr(p + 1, marker)) {
        const char *s = p + sizeof marker - 1;
        /* the newline after the role: an escape in a Jinja string, or a real one */
        if (s[0] == '\\' && s[1] == 'n') s += 2;
        else if (s[0] == '\n') s += 1;
        else continue;
        const char *end = strstr(s, "<|im_end|>");
        if (!end || end <= s) continue;
        size_t len = (size_t)(end - s);
        bool literal = true;
        for (const char *q = s; q < end; q++)
            if (*q == '\'' || *q == '"' || *q == '{' || *q == '}') literal = false;
        if (!literal) continue;
        char *out = malloc(len + 1);
        if (!out) return NULL;
        size_t n = 0;
        for (const char *q = s; q < end; q++) {
            if (*q == '\\' && q + 1 < end) {
                q++;
                out[n++] = *q == 'n' ? '\n' : *q == 't' ? '\t' : *q;
            } else {
                out[n++] = *q;
            }
        }
        out[n] = 0;
        return out;
    }
    return NULL;
}

/* The text in j after the first `after`, up to (not including) the first
 * of the bytes in `stops` or a Jinja "\n" escape, copied into out (cap
 * bytes). Returns 0, or -1 when `after` is absent or the text is empty or
 * too long. */
static int copy_literal_after(const char *j, const char *after, const char *stops, char *out, size_t cap) {
    const char *p = j ? strstr(j, after) : NULL;
    if (!p) return -1;
    p += strlen(after);
    size_t n = 0;
    while (p[n] && !strchr(stops, p[n]) && !(p[n] == '\\' && p[n + 1] == 'n')) n++;
    if (n == 0 || n >= cap) return -1;
    memcpy(out, p, n);
    out[n] = 0;
    return 0;
}

/* The lines a Llama 3.1-style template opens its system turn with: the
 * knowledge cut-off as the template writes it, and the date: today's
 * (local time, "26 Jul 2024" style) when the template asks for it with
 * strftime_now (3.2, 3.3, and as transformers renders them) or when there
 * is no template text, else the template's own literal (3.1). NULL when out
 * of memory. */
static char *llama31_system_header(const char *j) {
    char cutoff[64] = "December 2023", date[64] = "";
    copy_literal_after(j, "Cutting Knowledge Date: ", "\"'\n", cutoff, sizeof cutoff);
    if (!j || strstr(j, "strftime_now") || copy_literal_after(j, "date_string = \"", "\"\n", date, sizeof date)) {
        time_t now = time(NULL);
        struct tm tm;
        if (!localtime_r(&now, &tm) || strftime(date, sizeof date, "%d %b %Y", &tm) == 0) snprintf(date, sizeof date, "26 Jul 2024");
    }
    strbuf b = {0};
    strbuf_printf(&b, "Cutting Knowledge Date: %s\nToday Date: %s\n\n", cutoff, date);
    return b.s;
}

int chat_template_init(chat_template *t, const char *jinja, const char *force_name, const char *bos, const char *eos, al_err *err) {
    memset(t, 0, sizeof *t);
    if (force_name) {
        t->format = chat_format_from_name(force_name);
        if (t->format == CHAT_UNKNOWN)
            return al_err_set(err, "unknown chat template '%s' (known: %s)", force_name, chat_format_names());
    } else if (!jinja) {
        return al_err_set(err, "the model has no chat template (tokenizer.chat_template); choose one with --chat-template (%s)",
                          chat_format_names());
    } else {
        t->format = chat_format_detect(jinja);
        if (t->format == CHAT_UNKNOWN)
            return al_err_set(err, "the model's chat template is not one airlock recognises; choose a format with "
                                   "--chat-template (%s)", chat_format_names());
    }
    if (jinja && t->format == CHAT_CHATML) t->default_system = find_default_system(jinja);
    if (t->format == CHAT_LLAMA31 && !(t->system_header = llama31_system_header(jinja))) {
        chat_template_free(t);
        return al_err_set(err, "out of memory");
    }
    t->bos = strdup(bos ? bos : "");
    t->eos = strdup(eos ? eos : "");
    if (!t->bos || !t->eos) {
        chat_template_free(t);
        return al_err_set(err, "out of memory");
    }
    return 0;
}

void chat_template_free(chat_template *t) {
    free(t->default_system);
    free(t->system_header);
    free(t->bos);
    free(t->eos);
    memset(t, 0, sizeof *t);
}

/* Appends s with leading and trailing whitespace removed (Jinja's trim). */
static void put_trim(strbuf *b, const char *s) {
    const char *e = s + strlen(s);
    while (s < e && isspace((unsigned char)*s)) s++;
    while (e > s && isspace((unsigned char)e[-1])) e--;
    strbuf_put(b, s, (size_t)(e - s));
}

/* Messages [from, n) as Llama 3 turns (header, trimmed content, <|eot_id|>),
 * then the assistant's header when add_assistant. */
static void put_llama3_turns(strbuf *b, const chat_message *msgs, size_t from, size_t n, bool add_assistant) {
    for (size_t i = from; i < n; i++) {
        strbuf_printf(b, "<|start_header_id|>%s<|end_header_id|>\n\n", msgs[i].role);
        put_trim(b, msgs[i].content);
        strbuf_puts(b, "<|eot_id|>");
    }
    if (add_assistant) strbuf_puts(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static bool is_role(const chat_message *m, const char *r) { return strcmp(m->role, r) == 0; }

char *chat_template_apply(const chat_template *t, const chat_message *msgs, size_t n, bool add_assistant, al_err *err) {
    strbuf b = {0};
    size_t first = 0;
    const char *system = NULL;
    if (n > 0 && is_role(&msgs[0], "system")) {
        system = msgs[0].content;
        first = 1;
    }
    switch (t->format) {
    case CHAT_LLAMA2:
        for (size_t i = first; i < n; i++) {
            if (is_role(&msgs[i], "user")) {
                strbuf b2 = {0};
                if (i == first && system) strbuf_printf(&b2, "<<SYS>>\n%s\n<</SYS>>\n\n", system);
                strbuf_puts(&b2, msgs[i].content);
                strbuf_printf(&b, "%s[INST] ", t->bos);
                put_trim(&b, b2.s ? b2.s : "");
                strbuf_puts(&b, " [/INST]");
                strbuf_free(&b2);
            } else if (is_role(&msgs[i], "assistant")) {
                strbuf_puts(&b, " ");
                put_trim(&b, msgs[i].content);
                strbuf_printf(&b, " %s", t->eos);
            }
        }
        break;
    case CHAT_LLAMA3:
        if (n > 0) strbuf_puts(&b, t->bos);
        put_llama3_turns(&b, msgs, 0, n, add_assistant);
        break;
    case CHAT_LLAMA31: /* a system turn always; every message trimmed */
        strbuf_puts(&b, t->bos);
        strbuf_printf(&b, "<|start_header_id|>system<|end_header_id|>\n\n%s", t->system_header ? t->system_header : "");
        put_trim(&b, system ? system : "");
        strbuf_puts(&b, "<|eot_id|>");
        put_llama3_turns(&b, msgs, first, n, add_assistant);
        break;
    case CHAT_CHATML:
        if (!system && t->default_system) strbuf_printf(&b, "<|im_start|>system\n%s<|im_end|>\n", t->default_system);
        for (size_t i = 0; i < n; i++) strbuf_printf(&b, "<|im_start|>%s\n%s<|im_end|>\n", msgs[i].role, msgs[i].content);
        if (add_assistant) strbuf_puts(&b, "<|im_start|>assistant\n");
        break;
    case CHAT_MISTRAL:
        strbuf_puts(&b, t->bos);
        for (size_t i = first; i < n; i++) {
            if (is_role(&msgs[i], "user")) {
                strbuf_puts(&b, "[INST] ");
                if (i == first && system) strbuf_printf(&b, "%s\n\n", system); /* the template has no system role */
                strbuf_printf(&b, "%s [/INST]", msgs[i].content);
            } else if (is_role(&msgs[i], "assistant")) {
                strbuf_printf(&b, "%s%s", msgs[i].content, t->eos);
            }
        }
        break;
    case CHAT_PHI3:
        for (size_t i = 0; i < n; i++) strbuf_printf(&b, "<|%s|>\n%s<|end|>\n", msgs[i].role, msgs[i].content);
        if (add_assistant) strbuf_puts(&b, "<|assistant|>\n");
        else strbuf_puts(&b, t->eos);
        break;
    case CHAT_GEMMA:
        strbuf_puts(&b, t->bos);
        for (size_t i = first; i < n; i++) {
            strbuf_printf(&b, "<start_of_turn>%s\n", is_role(&msgs[i], "assistant") ? "model" : msgs[i].role);
            if (i == first && system) { /* the template has no system role: it leads the first turn */
                strbuf b2 = {0};
                strbuf_printf(&b2, "%s\n\n%s", system, msgs[i].content);
                put_trim(&b, b2.s ? b2.s : "");
                strbuf_free(&b2);
            } else {
                put_trim(&b, msgs[i].content);
            }
            strbuf_puts(&b, "<end_of_turn>\n");
        }
        if (add_assistant) strbuf_puts(&b, "<start_of_turn>model\n");
        break;
    case CHAT_DEEPSEEK:
        strbuf_puts(&b, t->bos);
        for (size_t i = 0; i < n; i++) {
            if (is_role(&msgs[i], "user")) strbuf_printf(&b, "User: %s\n\n", msgs[i].content);
            else if (is_role(&msgs[i], "assistant")) strbuf_printf(&b, "Assistant: %s%s", msgs[i].content, t->eos);
            else strbuf_printf(&b, "%s\n\n", msgs[i].content);
        }
        if (add_assistant) strbuf_puts(&b, "Assistant:");
        break;
    case CHAT_DEEPSEEK3:
        strbuf_puts(&b, t->bos);
        if (system) strbuf_puts(&b, system);
        for (size_t i = first; i < n; i++) {
            if (is_role(&msgs[i], "user")) strbuf_printf(&b, "<\xef\xbd\x9cUser\xef\xbd\x9c>%s", msgs[i].content);
            else if (is_role(&msgs[i], "assistant"))
                strbuf_printf(&b, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>%s%s", msgs[i].content, t->eos);
        }
        if (add_assistant) strbuf_puts(&b, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>");
        break;
    default:
        al_err_set(err, "no chat template chosen");
        strbuf_free(&b);
        return NULL;
    }
    char *s = strbuf_take(&b);
    if (!s) al_err_set(err, "out of memory rendering the conversation");
    return s;
}
